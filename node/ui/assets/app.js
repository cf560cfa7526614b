// The peer dashboard. It talks only to the daemon's documented API (docs/API.md) with the
// session cookie; every request that changes something carries the session's CSRF header.
// Names and everything else that came from the network or the disk go into the page through
// textContent or attributes, never as HTML.
'use strict';

const csrf = document.querySelector('meta[name="peer-csrf"]').content;
const csrfHeader = document.querySelector('meta[name="peer-csrf-header"]').content;
const $ = (id) => document.getElementById(id);

// ---- helpers ---------------------------------------------------------------------------------

// el builds an element: attrs are set as properties (on*) or attributes; children are nodes or
// strings (text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function td(label, ...children) { return el('td', { 'data-label': label }, ...children); }

function bytes(n) {
  n = Number(n) || 0;
  const u = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + u[i];
}
const rate = (n) => bytes(n) + '/s';

function duration(s) {
  if (!isFinite(s) || s < 0) return '—';
  s = Math.round(s);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}

const shortCID = (c) => (c && c.length > 16 ? c.slice(0, 8) + '…' + c.slice(-6) : c || '');
const when = (t) => (t ? new Date(t).toLocaleString() : '');

function toast(msg, isError) {
  const p = el('p', { class: isError ? 'error' : '' }, msg);
  $('toast').append(p);
  setTimeout(() => p.remove(), isError ? 8000 : 4000);
}

// api calls the daemon: JSON in and out, errors as the daemon words them.
async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') opts.headers[csrfHeader] = csrf;
  if (body instanceof Blob) {
    opts.body = body;
    opts.headers['Content-Type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (r.status === 401) { location.reload(); }
  if (!r.ok) throw new Error((data && data.error) || r.status + ' ' + r.statusText);
  return data;
}

// act runs an action from a button, reports its error, and keeps the button disabled meanwhile.
async function act(button, fn, done) {
  if (button) button.disabled = true;
  try {
    const v = await fn();
    if (done) toast(done);
    return v;
  } catch (e) {
    toast(e.message, true);
  } finally {
    if (button) button.disabled = false;
  }
}

function replaceRows(tbody, rows, empty) {
  tbody.replaceChildren(...rows);
  if (empty) $(empty).hidden = rows.length > 0;
}

// ---- pages and routing -----------------------------------------------------------------------

const pages = {};
let current = '';
let status = null; // the last GET /api/v1/status

function show() {
  const name = (location.hash || '#overview').slice(1).split('/')[0];
  const page = pages[name] ? name : 'overview';
  for (const n of Object.keys(pages)) {
    $('page-' + n).hidden = n !== page;
    const a = $('nav-' + n);
    if (n === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const changed = current !== page;
  current = page;
  document.title = 'peer — ' + page;
  if (changed) pages[page].enter();
}

function every(ms, page, fn) {
  setInterval(() => { if (current === page && !document.hidden) fn(); }, ms);
}

// ---- overview --------------------------------------------------------------------------------

async function loadStatus() {
  status = await api('GET', '/api/v1/status');
  return status;
}

async function refreshOverview() {
  const st = await loadStatus();
  $('peer-id').textContent = st.id;
  $('addrs').replaceChildren(...st.addrs.map((a) => el('li', {}, a)));
  $('network').textContent = (st.network ? st.network : 'the public IPFS network') + (st.private ? ' (private, swarm key)' : '');
  $('peers-count').textContent = st.peers;
  $('dht-size').textContent = st.dht.routing_table;
  $('dht-mode').textContent = st.dht.mode + ' mode, ' + st.dht.provided_roots + ' roots provided';
  $('files-count').textContent = st.files;
  $('files-bytes').textContent = bytes(st.files_bytes) + ' in all';
  $('disk-free').textContent = st.disk_free ? bytes(st.disk_free) : 'unknown';
  $('uptime').textContent = st.uptime || '—';
  drawChart(await api('GET', '/api/v1/bandwidth'));
}

const svgNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// drawChart draws the bandwidth samples (bytes per second, one per interval) as two lines.
function drawChart(bw) {
  const s = bw.samples || [];
  const W = 600, H = 160, n = Math.max(s.length, 2);
  let max = 1;
  for (const p of s) max = Math.max(max, p.in, p.out);
  const line = (k) => s.map((p, i) => ((i / (n - 1)) * W).toFixed(1) + ',' + (H - 4 - (p[k] / max) * (H - 8)).toFixed(1)).join(' ');
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
  for (const f of [0, 0.5, 1]) {
    const y = H - 4 - f * (H - 8);
    root.append(svg('line', { class: 'grid', x1: 0, x2: W, y1: y, y2: y }));
  }
  root.append(svg('polyline', { class: 'in', points: line('in') }), svg('polyline', { class: 'out', points: line('out') }));
  $('chart').replaceChildren(root);
  $('chart-max').textContent = 'top of the chart: ' + rate(max);
  $('chart-span').textContent = 'the last ' + duration((s.length * bw.interval_ms) / 1000);
  const last = s[s.length - 1] || { in: 0, out: 0 };
  $('rate-in').textContent = rate(last.in);
  $('rate-out').textContent = rate(last.out);
}

pages.overview = { enter: () => refreshOverview().catch((e) => toast(e.message, true)) };
every(2000, 'overview', () => refreshOverview().catch(() => {}));

$('copy-id').addEventListener('click', async () => {
  const id = $('peer-id').textContent;
  try {
    await navigator.clipboard.writeText(id);
    toast('Peer ID copied');
  } catch {
    const r = document.createRange();
    r.selectNodeContents($('peer-id'));
    getSelection().removeAllRanges();
    getSelection().addRange(r);
    toast('Press Ctrl+C to copy the selected ID');
  }
});

// ---- files -----------------------------------------------------------------------------------

function gatewayURL(cid, path) {
  if (!status || !status.gateway) return '';
  return status.gateway + '/ipfs/' + cid + (path ? '/' + path.split('/').map(encodeURIComponent).join('/') : '');
}

function fileState(f) {
  if (f.state === 'partial') {
    const pct = f.size ? Math.floor((100 * f.have) / f.size) : 0;
    return 'partial, ' + pct + '% (' + bytes(f.have) + ')';
  }
  return f.state;
}

let filesDrawn = '';
async function refreshFiles() {
  if (!status) await loadStatus();
  const files = await api('GET', '/api/v1/ls');
  // Draw only what changed: a row rebuilt under the pointer would lose a click.
  const drawn = JSON.stringify([files, status && status.gateway]);
  if (drawn === filesDrawn) return;
  filesDrawn = drawn;
  const rows = files.map((f) => {
    const name = f.dir
      ? el('button', { type: 'button', class: 'quiet', onclick: () => browse(f.cid, '') }, (f.name || f.cid) + '/')
      : el('span', {}, f.name || '(no name)');
    const actions = el('td', { class: 'actions', 'data-label': 'Actions' });
    actions.append(el('button', {
      type: 'button', 'data-action': f.pinned ? 'unpin' : 'pin', 'aria-label': (f.pinned ? 'Unpin ' : 'Pin ') + (f.name || f.cid),
      onclick: (e) => act(e.currentTarget, () => api('POST', f.pinned ? '/api/v1/unpin' : '/api/v1/pin', { cid: f.cid }), f.pinned ? 'Unpinned' : 'Pinned').then(() => refreshFiles().catch(() => {})),
    }, f.pinned ? 'Unpin' : 'Pin'));
    actions.append(el('button', {
      type: 'button', class: 'danger', 'data-action': 'rm', 'aria-label': 'Remove ' + (f.name || f.cid),
      onclick: (e) => {
        if (!confirm('Forget ' + (f.name || f.cid) + '?' + (f.shared ? ' It is withdrawn from the network.' : ''))) return;
        act(e.currentTarget, () => api('POST', '/api/v1/rm', { cid: f.cid }), 'Removed').then(() => refreshFiles().catch(() => {}));
      },
    }, 'Remove'));
    const gw = gatewayURL(f.cid, '');
    if (gw) actions.append(el('a', { href: gw, target: '_blank', rel: 'noopener noreferrer' }, 'Open'));
    if (!f.dir && f.state === 'complete') {
      actions.append(el('a', { href: '/api/v1/cat/' + encodeURIComponent(f.cid), download: f.name || f.cid }, 'Download'));
    }
    return el('tr', { 'data-cid': f.cid },
      td('Name', name),
      td('State', el('span', { class: 'state-' + f.state }, fileState(f)), f.error ? el('div', { class: 'error' }, f.error) : null),
      td('Size', bytes(f.size) + (f.dir ? ' in ' + f.files + ' files' : '')),
      td('Shared', f.shared ? 'shared' : 'no'),
      td('Pinned', f.pinned ? 'pinned' : 'no'),
      el('td', { class: 'cid mono', title: f.cid, 'data-label': 'CID' }, f.cid),
      actions);
  });
  replaceRows($('files-rows'), rows, 'files-empty');
}

let browsing = null; // {cid, path}
async function browse(cid, path) {
  browsing = { cid, path };
  try {
    const entries = await api('GET', '/api/v1/ls?path=' + encodeURIComponent(cid + (path ? '/' + path : '')));
    $('browse').hidden = false;
    $('browse-path').textContent = '/ipfs/' + cid + (path ? '/' + path : '');
    $('browse-up').disabled = !path;
    const rows = entries.map((e) => {
      const sub = path ? path + '/' + e.name : e.name;
      const name = e.kind === 'dir'
        ? el('button', { type: 'button', class: 'quiet', onclick: () => browse(cid, sub) }, e.name + '/')
        : el('span', {}, e.name);
      const links = el('td', { class: 'actions', 'data-label': '' });
      const gw = gatewayURL(cid, sub);
      if (gw) links.append(el('a', { href: gw, target: '_blank', rel: 'noopener noreferrer' }, 'Open'));
      if (e.kind === 'file') {
        links.append(el('a', { href: '/api/v1/cat/' + encodeURIComponent(cid) + '?path=' + encodeURIComponent(sub), download: e.name }, 'Download'));
      }
      return el('tr', {}, td('Name', name), td('Kind', e.kind), td('Size', bytes(e.size)), el('td', { class: 'cid mono', title: e.cid, 'data-label': 'CID' }, e.cid), links);
    });
    $('browse-rows').replaceChildren(...rows);
  } catch (e) {
    toast(e.message, true);
  }
}
$('browse-up').addEventListener('click', () => {
  if (!browsing || !browsing.path) return;
  const parts = browsing.path.split('/');
  parts.pop();
  browse(browsing.cid, parts.join('/'));
});
$('browse-close').addEventListener('click', () => { $('browse').hidden = true; browsing = null; });

$('share-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const path = $('share-path').value.trim();
  act(e.submitter, () => api('POST', '/api/v1/share', { path }), 'Shared ' + path).then((f) => {
    if (f) $('share-path').value = '';
    refreshFiles();
  });
});

async function upload(files) {
  for (const f of files) {
    await act(null, () => api('POST', '/api/v1/add?name=' + encodeURIComponent(f.name), f), 'Added ' + f.name);
  }
  refreshFiles();
}
$('upload').addEventListener('change', (e) => { upload([...e.target.files]); e.target.value = ''; });
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  upload([...e.dataTransfer.files]);
});

pages.files = { enter: () => refreshFiles().catch((e) => toast(e.message, true)) };

// ---- transfers -------------------------------------------------------------------------------

const transfers = new Map(); // id → transfer
let drawPending = false;

function drawTransfers() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    const list = [...transfers.values()];
    const order = { running: 0, queued: 1, paused: 2, failed: 3, canceled: 4, done: 5 };
    list.sort((a, b) => (order[a.state] ?? 9) - (order[b.state] ?? 9) || String(b.queued).localeCompare(String(a.queued)));
    const rows = list.map(transferRow);
    const body = $('transfer-rows');
    // Move rows only when the order changed, so that a row being clicked stays put.
    if (rows.length !== body.children.length || rows.some((r, i) => body.children[i] !== r)) body.replaceChildren(...rows);
    $('transfers-empty').hidden = rows.length > 0;
    for (const id of transferRows.keys()) if (!transfers.has(id)) transferRows.delete(id);
  });
}

// Rows are kept per transfer and updated in place: figures change four times a second, and a
// button replaced between the press and the release of a click would lose the click.
const transferRows = new Map(); // id → {tr, actions, key}

function transferActions(t) {
  if (t.direction !== 'download') return [];
  const a = [];
  if (t.state === 'running' || t.state === 'queued') a.push('pause');
  if (t.state === 'paused' || t.state === 'failed' || t.state === 'canceled') a.push('resume');
  if (t.state === 'running' || t.state === 'queued' || t.state === 'paused') a.push('cancel');
  return a;
}

function transferRow(t) {
  const pct = t.bytes ? Math.min(100, Math.floor((100 * t.bytes_done) / t.bytes)) : 0;
  const left = t.state === 'running' && t.rate > 0 && t.bytes ? (t.bytes - t.bytes_done) / t.rate : NaN;
  const name = t.name || t.cid || t.peer;
  let r = transferRows.get(t.id);
  if (!r) {
    r = { tr: el('tr', { 'data-id': t.id }), actions: null, key: null };
    transferRows.set(t.id, r);
  }
  const wanted = transferActions(t);
  if (r.key !== wanted.join(' ')) {
    const labels = { pause: 'Pause', resume: 'Resume', cancel: 'Cancel' };
    r.actions = el('td', { class: 'actions', 'data-label': 'Actions' }, ...wanted.map((action) => el('button', {
      type: 'button', 'data-action': action, 'aria-label': labels[action] + ' ' + name,
      class: action === 'cancel' ? 'danger' : '',
      onclick: (e) => act(e.currentTarget, () => api('POST', '/api/v1/transfers/' + encodeURIComponent(t.id) + '/' + action)).then((v) => { if (v) { transfers.set(v.id, v); drawTransfers(); } }),
    }, labels[action])));
    r.key = wanted.join(' ');
  }
  const progress = t.direction === 'download'
    ? [el('progress', { max: 100, value: pct, 'aria-label': 'progress of ' + name }), ' ', el('span', { class: 'pct' }, pct + '%'), el('div', { class: 'muted' }, bytes(t.bytes_done) + ' of ' + (t.bytes ? bytes(t.bytes) : '?'))]
    : [bytes(t.bytes_done) + ' sent'];
  r.tr.setAttribute('data-state', t.state);
  r.tr.setAttribute('data-cid', t.cid);
  const cells = [
    td('Name', el('span', { class: name === t.peer ? 'mono' : '' }, name), t.output ? el('div', { class: 'muted mono' }, t.output) : null,
      t.peer && name !== t.peer ? el('div', { class: 'muted mono', title: t.peer }, 'to ' + t.peer) : null),
    td('Direction', t.direction),
    td('State', el('span', { class: 'state state-' + t.state }, t.state), t.error ? el('div', { class: 'error' }, t.error) : null),
    td('Progress', ...progress),
    td('Rate', t.rate ? rate(t.rate) : '—'),
    td('Peers', String(t.peers)),
    td('Time left', duration(left)),
  ];
  // Replace the figures' cells, keep the actions cell (and its buttons) where it is.
  while (r.tr.firstChild && r.tr.firstChild !== r.actions) r.tr.firstChild.remove();
  if (r.tr.lastChild !== r.actions) r.tr.replaceChildren(r.actions);
  r.tr.prepend(...cells);
  return r.tr;
}

async function reloadTransfers() {
  const list = await api('GET', '/api/v1/transfers');
  transfers.clear();
  for (const t of list) transfers.set(t.id, t);
  drawTransfers();
}

const dirKey = 'peer.downloadDir';
$('fetch-dir').value = localStorage.getItem(dirKey) || '';

function downloadDir() {
  const d = $('fetch-dir').value.trim();
  if (d) localStorage.setItem(dirKey, d);
  return d;
}

async function queueFetch(cid, button) {
  const dir = downloadDir();
  if (!dir) {
    toast('Choose a folder to save into first (Transfers: "Save into folder").', true);
    location.hash = '#transfers';
    $('fetch-dir').focus();
    return;
  }
  const t = await act(button, () => api('POST', '/api/v1/transfers', { cid, dir }));
  if (t) toast('Fetching ' + (t.name || shortCID(cid)) + ' into ' + dir);
  if (t) { transfers.set(t.id, t); drawTransfers(); }
  return t;
}

$('fetch-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const t = await queueFetch($('fetch-cid').value.trim(), e.submitter);
  if (t) $('fetch-cid').value = '';
});

pages.transfers = { enter: () => reloadTransfers().catch((e) => toast(e.message, true)) };
// Uploads end without an event of their own: reconcile with the list now and then.
every(5000, 'transfers', () => reloadTransfers().catch(() => {}));

// ---- network ---------------------------------------------------------------------------------

async function search() {
  const q = $('search-q').value.trim();
  const offers = await api('GET', '/api/v1/search?q=' + encodeURIComponent(q));
  const rows = offers.map((o) => el('tr', { 'data-cid': o.cid },
    td('Name', el('span', { class: 'name' }, o.name || '(no name)'), o.dir ? ' (folder, ' + o.files + ' files)' : ''),
    td('Size', bytes(o.size)),
    td('Providers', String(o.providers.length)),
    td('Last seen', when(o.last_seen)),
    el('td', { class: 'cid mono', title: o.cid, 'data-label': 'CID' }, o.cid),
    el('td', { class: 'actions', 'data-label': '' }, el('button', {
      type: 'button', 'data-action': 'fetch', 'aria-label': 'Fetch ' + (o.name || o.cid),
      onclick: (e) => queueFetch(o.cid, e.currentTarget),
    }, 'Fetch'))));
  replaceRows($('catalog-rows'), rows, 'catalog-empty');
}
$('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  search().catch((err) => toast(err.message, true));
});

async function refreshPeers() {
  const peers = await api('GET', '/api/v1/peers');
  $('peer-rows').replaceChildren(...peers.map((p) => el('tr', { 'data-peer': p.id },
    el('td', { class: 'mono', 'data-label': 'Peer' }, p.id),
    el('td', { class: 'mono', 'data-label': 'Address' }, p.addr),
    td('Direction', p.direction),
    td('Latency', p.latency_ns ? (p.latency_ns / 1e6).toFixed(1) + ' ms' : '—'),
    td('Received', bytes(p.bytes_in)),
    td('Sent', bytes(p.bytes_out)))));
}

$('connect-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const addr = $('connect-addr').value.trim();
  act(e.submitter, () => api('POST', '/api/v1/connect', { addr }), 'Connected').then((p) => {
    if (p) $('connect-addr').value = '';
    refreshPeers();
  });
});

pages.network = {
  enter: () => {
    refreshPeers().catch((e) => toast(e.message, true));
    search().catch((e) => toast(e.message, true));
  },
};
every(3000, 'network', () => refreshPeers().catch(() => {}));

// ---- history ---------------------------------------------------------------------------------

const events = []; // in order of seq
let lastSeq = -1;
const kinds = new Set();

function eventItem(ev) {
  const what = [];
  if (ev.name) what.push(el('span', { class: 'name' }, ev.name));
  if (ev.cid) what.push(el('span', { class: 'mono', title: ev.cid }, shortCID(ev.cid)));
  if (ev.size) what.push(el('span', {}, bytes(ev.size)));
  if (ev.peer) what.push(el('span', { class: 'mono', title: ev.peer }, 'peer ' + shortCID(ev.peer)));
  if (ev.path) what.push(el('span', { class: 'mono' }, ev.path));
  if (ev.transfer) what.push(el('span', {}, 'transfer ' + ev.transfer));
  if (ev.error) what.push(el('span', { class: 'error' }, ev.error));
  return el('li', { 'data-kind': ev.type, 'data-seq': ev.seq },
    el('time', { datetime: ev.time }, when(ev.time)), el('span', { class: 'kind' }, ev.type), ...what);
}

let timelinePending = false;
function drawTimeline() {
  if (current !== 'history' || timelinePending) return;
  timelinePending = true;
  requestAnimationFrame(() => {
    timelinePending = false;
    const kind = $('event-kind').value;
    const shown = [];
    for (let i = events.length - 1; i >= 0 && shown.length < 500; i--) {
      if (!kind || events[i].type === kind) shown.push(eventItem(events[i]));
    }
    $('timeline').replaceChildren(...shown);
    const select = $('event-kind');
    for (const k of [...kinds].sort()) {
      if (![...select.options].some((o) => o.value === k)) select.append(el('option', { value: k }, k));
    }
    sliderBounds();
  });
}

function addEvent(ev) {
  if (ev.seq <= lastSeq) return;
  lastSeq = ev.seq;
  events.push(ev);
  kinds.add(ev.type);
  if (events.length > 20000) events.splice(0, events.length - 20000);
}

// The slider moves by whole seconds from before the first event to the next whole second (a
// range input rounds its value to a step from min, so both ends are whole seconds).
function sliderBounds() {
  const slider = $('at-slider');
  const atNow = slider.value === slider.max;
  const first = events.length ? Date.parse(events[0].time) : Date.now();
  slider.min = String(Math.floor(first / 1000) * 1000 - 1000);
  slider.max = String(Math.ceil(Date.now() / 1000) * 1000);
  if (atNow) slider.value = slider.max;
  $('at-time').textContent = new Date(Number(slider.value)).toLocaleString();
}

let atTimer = 0;
async function showAt() {
  const t = new Date(Number($('at-slider').value));
  $('at-time').textContent = t.toLocaleString();
  const files = await api('GET', '/api/v1/ls?at=' + encodeURIComponent(t.toISOString()));
  $('at-rows').replaceChildren(...files.map((f) => el('tr', {},
    td('Name', f.name || '(no name)'), td('State', fileState(f)), td('Size', bytes(f.size)),
    el('td', { class: 'cid mono', title: f.cid, 'data-label': 'CID' }, f.cid))));
}
$('at-slider').addEventListener('input', () => {
  clearTimeout(atTimer);
  $('at-time').textContent = new Date(Number($('at-slider').value)).toLocaleString();
  atTimer = setTimeout(() => showAt().catch((e) => toast(e.message, true)), 200);
});
$('at-now').addEventListener('click', () => {
  $('at-slider').value = $('at-slider').max;
  sliderBounds();
  showAt().catch((e) => toast(e.message, true));
});
$('event-kind').addEventListener('change', drawTimeline);

pages.history = {
  enter: () => {
    const s = $('at-slider');
    s.value = s.max;
    sliderBounds();
    drawTimeline();
    showAt().catch((e) => toast(e.message, true));
  },
};

// ---- live updates ----------------------------------------------------------------------------

// follow keeps an EventSource open on url(), opening it again (with a fresh URL, so that the
// events stream resumes after the last one seen) when it breaks.
function follow(url, setup) {
  let backoff = 1000;
  const open = () => {
    const es = new EventSource(url());
    es.onopen = () => { backoff = 1000; $('live').classList.add('on'); };
    es.onerror = () => {
      es.close();
      $('live').classList.remove('on');
      setTimeout(open, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
    setup(es);
  };
  open();
}

let filesTimer = 0;
follow(() => '/api/v1/events?follow=1&from=' + (lastSeq + 1), (es) => {
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    addEvent(ev);
    drawTimeline();
    if (current === 'files') {
      clearTimeout(filesTimer);
      filesTimer = setTimeout(() => refreshFiles().catch(() => {}), 300);
    }
  };
});

follow(() => '/api/v1/transfers?follow=1', (es) => {
  es.addEventListener('transfer', (m) => {
    try {
      const t = JSON.parse(m.data);
      transfers.set(t.id, t);
    } catch { return; }
    drawTransfers();
  });
});

$('logout').addEventListener('click', (e) => act(e.currentTarget, () => api('POST', '/api/v1/ui/logout')).then(() => location.reload()));

window.addEventListener('hashchange', show);
show();
