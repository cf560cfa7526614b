package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"peer/node/api"
)

// chromium finds the browser the dashboard tests drive: $PEER_CHROMIUM, else chromium (Debian's
// package) or Chrome on the PATH. Without one the test is skipped, except in CI (CI set), where a
// missing browser fails it: .ci/run installs chromium.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PEER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal("no chromium on the PATH, and CI is set: the browser tests must run (apt-get install -y chromium)")
	}
	t.Skip("no chromium on the PATH (apt-get install -y chromium, or set PEER_CHROMIUM): the dashboard's browser tests need one")
	return ""
}

// browser starts a headless chromium of its own (a temporary profile, no sandbox as root can
// only run it so, a 1280×800 window) and returns its tab's context, which ends within timeout.
// dialogs lists the message of every JavaScript dialog the page opened (each is accepted);
// problems, every uncaught exception and every console entry that is not about the network (a
// Content-Security-Policy violation, say).
func browser(t *testing.T, timeout time.Duration) (ctx context.Context, dialogs, problems func() []string) {
	t.Helper()
	exe := chromium(t)
	base, cancelTimeout := context.WithTimeout(t.Context(), timeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)), "starting %s", exe)
	_, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	require.NoError(t, err)
	var mu sync.Mutex
	var seen, bad []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			bad = append(bad, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *cdplog.EventEntryAdded:
			// Network errors are the refusals the test asks for; verbose entries are Chrome's hints.
			if ev.Entry.Source != cdplog.EntrySourceNetwork && ev.Entry.Level != cdplog.EntryLevelVerbose && ev.Entry.Level != cdplog.EntryLevelInfo {
				bad = append(bad, fmt.Sprintf("console %s %s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}))
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, ev.Message)
			mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx, func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), seen...)
		}, func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), bad...)
		}
}

// screenshots is where the tests write a picture of each page: docs/screenshots with
// PEER_UPDATE_SCREENSHOTS=1, else a temporary directory.
func screenshots(t *testing.T) string {
	if os.Getenv("PEER_UPDATE_SCREENSHOTS") == "1" {
		dir, err := filepath.Abs(filepath.Join("..", "..", "docs", "screenshots"))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

func snap(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	path := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot %s", path)
}

// wait polls a JavaScript condition in the page until it is true (within d).
func wait(t *testing.T, ctx context.Context, d time.Duration, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(50*time.Millisecond)))
		// A page that navigates (a login, a reload) ends the poll: look again in the new one.
		if err == nil || time.Now().After(deadline) || !navigating(err) {
			break
		}
	}
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + '\n' + document.body.innerText`))
		t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, cond, err, body)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

func js(s string) string { return strconv.Quote(s) }

// The dashboard in a real browser against real daemons: log in with peer ui's link, see the peer
// and its neighbour, upload a file, fetch a shared file and pause and resume it to 100%, find a
// file in the catalog and fetch it, show a hostile announced name as text, refuse a request from
// another origin, and fit a phone's width. It writes a screenshot of each page.
func TestDashboardInABrowser(t *testing.T) {
	ctx, dialogs, problems := browser(t, 150*time.Second)
	shots := screenshots(t)
	dir := t.TempDir()
	seed, leech := filepath.Join(dir, "seed"), filepath.Join(dir, "leech")
	initRepo(t, seed)
	initRepo(t, leech)
	// Slow enough to pause halfway: 8 MiB at 1.5 MB/s.
	_, errOut, code := peerCmd(t, leech, "config", "set", "download_limit", "1500000")
	require.Zero(t, code, errOut)
	startDaemonProcess(t, seed, "--network", "uitest")
	startDaemonProcess(t, leech, "--network", "uitest", "--bootstrap", daemonAddr(t, seed), "--gateway", "127.0.0.1:0")
	seedID, leechID := peerIDOf(t, seed), peerIDOf(t, leech)

	big, _ := shareRandom(t, seed, "talk.mp4", 8<<20, 7)
	hostile := `<img src=x onerror=alert(1)>`
	evil, _ := shareRandom(t, seed, hostile, 50_000, 8)
	lc, err := api.ForRepo(leech)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var offers []map[string]any
		return lc.Call(t.Context(), http.MethodGet, "/api/v1/search?q=img", nil, &offers) == nil && len(offers) == 1
	}, 60*time.Second, 100*time.Millisecond, "the hostile name's announcement reaches the leech")

	// Log in with the one-time link.
	out, errOut, code := peerCmd(t, leech, "ui", "--print")
	require.Zero(t, code, errOut)
	login := strings.TrimSpace(out)
	apiURL := login[:strings.Index(login, api.PathUILogin)]
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(login)))
	wait(t, ctx, 20*time.Second, "the peer ID", `document.getElementById('peer-id').textContent === `+js(leechID))
	require.Equal(t, apiURL+api.PathUI, eval[string](t, ctx, `location.origin + location.pathname`), "the code is out of the address bar")
	wait(t, ctx, 20*time.Second, "a connected peer", `document.getElementById('peers-count').textContent === '1'`)
	wait(t, ctx, 20*time.Second, "the bandwidth chart", `document.querySelectorAll('#chart polyline').length === 2`)
	require.Equal(t, "", eval[string](t, ctx, `document.cookie`), "the session cookie is HttpOnly")

	// Files: upload through the file picker.
	upload := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(upload, []byte("uploaded from the dashboard\n"), 0o644))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#nav-files")),
		chromedp.WaitVisible(chromedp.CSS("#upload")),
		chromedp.SetUploadFiles(chromedp.CSS("#upload"), []string{upload}),
	))
	wait(t, ctx, 20*time.Second, "the uploaded file in Files",
		`[...document.querySelectorAll('#files-rows tr')].some(r => r.textContent.includes('notes.txt') && r.textContent.includes('complete'))`)
	files, err := lc.Ls(t.Context())
	require.NoError(t, err)
	require.Len(t, files, 1)
	require.Equal(t, "notes.txt", files[0].Name, "the upload went into the repo through the API")
	notes := files[0].CID

	// Drop a file on the drop zone (a drop event carrying it, as a drag from the desktop makes).
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(['dropped on the page\n'], 'dropped.txt', {type: 'text/plain'}));
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`)))
	wait(t, ctx, 20*time.Second, "the dropped file in Files", `[...document.querySelectorAll('#files-rows tr')].some(r => r.textContent.includes('dropped.txt'))`)

	// Pin it; share a folder of this machine and browse into it, a hostile entry name included.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#files-rows tr[data-cid="`+notes+`"] button[data-action="pin"]`))))
	wait(t, ctx, 20*time.Second, "notes.txt pinned", `document.querySelector('#files-rows tr[data-cid=`+js(notes)+`]')?.textContent.includes('pinned')`)
	album := filepath.Join(t.TempDir(), "album")
	require.NoError(t, os.MkdirAll(filepath.Join(album, "disc 1"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(album, "disc 1", "01.flac"), []byte("one"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(album, hostile), []byte("two"), 0o644))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#share-path"), album),
		chromedp.Click(chromedp.CSS("#share-form button[type=submit]")),
	))
	wait(t, ctx, 20*time.Second, "the shared folder", `[...document.querySelectorAll('#files-rows tr')].some(r => r.textContent.includes('album/') && r.textContent.includes('shared'))`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('#files-rows button')].find(b => b.textContent === 'album/').click()`)))
	wait(t, ctx, 20*time.Second, "the folder's entries", `document.querySelectorAll('#browse-rows tr').length === 2`)
	require.True(t, eval[bool](t, ctx, `[...document.querySelectorAll('#browse-rows td:first-child')].some(td => td.textContent === `+js(hostile)+`)`), "an entry's name is text")
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('main img').length`))
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('#browse-rows button')].find(b => b.textContent === 'disc 1/').click()`)))
	wait(t, ctx, 20*time.Second, "into disc 1", `document.getElementById('browse-path').textContent.endsWith('/disc 1') && document.querySelector('#browse-rows')?.textContent.includes('01.flac')`)

	// Transfers: fetch a CID typed in; pause it halfway, resume it, watch it reach 100%.
	downloads := t.TempDir()
	row := `document.querySelector('#transfer-rows tr[data-cid=` + js(big) + `]')`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#nav-transfers")),
		chromedp.WaitVisible(chromedp.CSS("#fetch-cid")),
		chromedp.SendKeys(chromedp.CSS("#fetch-cid"), big),
		chromedp.SetValue(chromedp.CSS("#fetch-dir"), downloads),
		chromedp.Click(chromedp.CSS("#fetch-form button[type=submit]")),
	))
	wait(t, ctx, 30*time.Second, "the fetch running with bytes in", row+`?.dataset.state === 'running' && !['0%', undefined].includes(`+row+`.querySelector('.pct')?.textContent)`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#transfer-rows tr[data-cid="`+big+`"] button[data-action="pause"]`))))
	wait(t, ctx, 20*time.Second, "the transfer paused", row+`?.dataset.state === 'paused'`)
	var paused api.Transfer
	for _, tr := range transfersOf(t, leech) {
		if tr.CID == big {
			paused = tr
		}
	}
	require.Equal(t, "paused", paused.State, "the daemon paused it")
	require.Less(t, paused.BytesDone, paused.Bytes, "paused before the end")
	snap(t, ctx, shots, "transfers")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#transfer-rows tr[data-cid="`+big+`"] button[data-action="resume"]`))))
	wait(t, ctx, 60*time.Second, "the transfer done at 100%", row+`?.dataset.state === 'done' && `+row+`.querySelector('.pct').textContent === '100%'`)
	st, err := os.Stat(filepath.Join(downloads, "talk.mp4"))
	require.NoError(t, err)
	require.EqualValues(t, 8<<20, st.Size())

	// Network: the seeder among the peers; search the catalog, see the hostile name as text, fetch it.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#nav-network")),
		chromedp.WaitVisible(chromedp.CSS("#search-q")),
	))
	wait(t, ctx, 20*time.Second, "the seeder in the peers table", `!!document.querySelector('#peer-rows tr[data-peer=`+js(seedID)+`]')`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#connect-addr"), daemonAddr(t, seed)),
		chromedp.Click(chromedp.CSS("#connect-form button[type=submit]")),
	))
	wait(t, ctx, 30*time.Second, "connected by address", `document.getElementById('toast').textContent.includes('Connected')`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#search-q"), "img"),
		chromedp.Click(chromedp.CSS("#search-form button[type=submit]")),
	))
	evilRow := `document.querySelector('#catalog-rows tr[data-cid=` + js(evil) + `]')`
	wait(t, ctx, 20*time.Second, "the hostile name in the catalog", `!!`+evilRow+` && document.querySelectorAll('#catalog-rows tr').length === 1`)
	require.Equal(t, hostile, eval[string](t, ctx, evilRow+`.querySelector('.name').textContent`), "the name shows as text")
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('main img').length`), "no element made of the name")
	snap(t, ctx, shots, "network")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#catalog-rows tr[data-cid="`+evil+`"] button[data-action="fetch"]`))))
	require.Eventually(t, func() bool {
		for _, tr := range transfersOf(t, leech) {
			if tr.CID == evil && tr.State == "done" {
				return true
			}
		}
		return false
	}, 60*time.Second, 100*time.Millisecond, "the catalog's fetch completes")
	got, err := os.ReadFile(filepath.Join(downloads, hostile))
	require.NoError(t, err, "fetched under its (sanitized) name")
	require.Len(t, got, 50_000)

	// History: the timeline filtered by kind; the index as it was before anything happened.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#nav-history")),
		chromedp.WaitVisible(chromedp.CSS("#event-kind")),
	))
	wait(t, ctx, 20*time.Second, "the timeline with the fetch's end", `[...document.querySelectorAll('#timeline li')].some(li => li.dataset.kind === 'FetchCompleted')`)
	wait(t, ctx, 20*time.Second, "the index now", `document.querySelectorAll('#at-rows tr').length === 5`)
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('main img').length`), "announced names in the timeline are text")
	require.True(t, eval[bool](t, ctx, `[...document.querySelectorAll('#timeline .name')].some(n => n.textContent === `+js(hostile)+`)`))
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#event-kind"), "FileAdded")))
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('event-kind').dispatchEvent(new Event('change'))`)))
	wait(t, ctx, 10*time.Second, "only FileAdded events", `(() => { const l = [...document.querySelectorAll('#timeline li')]; return l.length > 0 && l.every(li => li.dataset.kind === 'FileAdded') })()`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('at-slider'); s.value = s.min; s.dispatchEvent(new Event('input')) })()`)))
	wait(t, ctx, 10*time.Second, "the index before the first event, empty", `document.querySelectorAll('#at-rows tr').length === 0`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#at-now"))))
	wait(t, ctx, 10*time.Second, "the index now, again", `document.querySelectorAll('#at-rows tr').length === 5`)
	snap(t, ctx, shots, "history")

	// The overview again, its chart drawn over the fetches' traffic.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#nav-overview"))))
	wait(t, ctx, 20*time.Second, "the files in the overview", `document.getElementById('files-count').textContent === '5'`)
	snap(t, ctx, shots, "overview")

	// Files again: the fetched hostile name is text there too.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#nav-files"))))
	wait(t, ctx, 20*time.Second, "five files", `document.querySelectorAll('#files-rows tr').length === 5`)
	// The gateway runs: a file opens through it.
	gw := eval[string](t, ctx, `document.querySelector('#files-rows tr[data-cid=`+js(big)+`] a[target=_blank]')?.href || ''`)
	gwURL := strings.TrimSpace(string(must(t, filepath.Join(leech, "gateway"))))
	require.Equal(t, gwURL+"/ipfs/"+big, gw)
	head, err := http.Head(gw)
	require.NoError(t, err)
	head.Body.Close()
	require.Equal(t, http.StatusOK, head.StatusCode)
	require.EqualValues(t, 8<<20, head.ContentLength)
	require.True(t, eval[bool](t, ctx, `[...document.querySelectorAll('#files-rows tr')].some(r => r.textContent.includes(`+js(hostile)+`))`))
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('main img').length`))
	snap(t, ctx, shots, "files")

	// By keyboard: the first Tab reaches the skip link, and every action is a real button.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(apiURL+api.PathUI)))
	wait(t, ctx, 20*time.Second, "the page again", `document.getElementById('peer-id').textContent === `+js(leechID))
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("\t")))
	require.Equal(t, "skip", eval[string](t, ctx, `document.activeElement.className`))
	require.NoError(t, chromedp.Do(ctx, chromedp.Focus(chromedp.CSS("#nav-transfers")), chromedp.KeyEvent("\r")))
	wait(t, ctx, 10*time.Second, "Transfers opened by keyboard", `!document.getElementById('page-transfers').hidden`)
	require.Equal(t, "page", eval[string](t, ctx, `document.getElementById('nav-transfers').getAttribute('aria-current')`))
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('[onclick], a:not([href])').length`))
	require.Zero(t, eval[int](t, ctx, `[...document.querySelectorAll('input, select')].filter(e => e.labels.length === 0).length`), "every field has a label")

	// At phone width nothing overflows sideways.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)))
	for _, p := range []string{"overview", "files", "transfers", "network", "history"} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#nav-"+p))))
		wait(t, ctx, 10*time.Second, p+" shown", `!document.getElementById('page-`+p+`').hidden`)
		w := eval[[]int](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`)
		if w[0] > w[1] {
			wide := eval[[]string](t, ctx, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`)
			t.Fatalf("%s is %d px wide at %d: %v", p, w[0], w[1], wide)
		}
		if p == "transfers" {
			snap(t, ctx, shots, "phone-transfers")
		}
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))

	// Another origin (a page on another port of 127.0.0.1: the same site, so the browser sends
	// the cookie) posting to the API is refused.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="post" action="%s/api/v1/ui/code"><button id="go">go</button></form>`, apiURL)
	}))
	defer other.Close()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(other.URL)))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#go")))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusForbidden, resp.Status, "a request from another origin")
	require.Contains(t, eval[string](t, ctx, `document.body.innerText`), "refused")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(apiURL+api.PathUI)))
	wait(t, ctx, 20*time.Second, "the session still works", `document.getElementById('peer-id').textContent === `+js(leechID))

	// Log out: the page asks for the token, and the token logs in again.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#logout"))))
	wait(t, ctx, 20*time.Second, "the login form", `!!document.getElementById('login-form')`)
	tok := strings.TrimSpace(string(must(t, filepath.Join(leech, api.TokenFile))))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Submit(chromedp.CSS("#token")),
	))
	wait(t, ctx, 20*time.Second, "a wrong token refused", `document.getElementById('login-error')?.textContent.includes('not this daemon')`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), tok),
		chromedp.Submit(chromedp.CSS("#token")),
	))
	wait(t, ctx, 20*time.Second, "logged in with the token", `document.getElementById('peer-id')?.textContent === `+js(leechID))

	require.Empty(t, dialogs(), "no script of a name ran (no dialog opened)")
	require.Empty(t, problems(), "no exception, no CSP violation, no console error")
}

// navigating reports whether err says the page went away under a command (it navigated).
func navigating(err error) bool {
	for _, s := range []string{"navigated", "context was destroyed", "Cannot find context"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}
