package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"peer/node/api"
	"peer/store"
	"peer/transfer"
)

// ErrUnknownTransfer means no transfer has that ID.
var ErrUnknownTransfer = errors.New("no such transfer")

// ErrTransferState means a transfer is not in a state the action applies to (pausing one that
// is done, say).
var ErrTransferState = errors.New("not possible now")

// keepEnded is how many transfers that ended in this process keep their figures (the result of
// the fetch, for a client that attaches late).
const keepEnded = 64

// transferManager runs the daemon's transfers: a queue of fetches of which at most max_fetches
// run at once, each one a Node.Fetch under a context that pausing or canceling ends. Every
// change is an event (store/transfers.go), so the list is the store's projection and a restart
// resumes from it; the figures of a running fetch (progress, rate) live here.
type transferManager struct {
	n   *Node
	ex  *exchange
	st  *store.Store
	max int

	ctx    context.Context // ends when the daemon stops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu orders the transfer events (each is recorded with it held, after checking the state it
	// changes) and guards what follows.
	mu      sync.Mutex
	running map[string]*liveTransfer // by ID: fetches that have not returned yet
	ended   map[string]*liveTransfer // by ID: fetches that returned in this process
	order   []string                 // ended's IDs, oldest first
	changed chan struct{}            // closed and replaced at every change
	closed  bool
	// atStart is the transfers the log left queued or running when the daemon started: they
	// wait for providers rather than fail for want of them (see run).
	atStart map[string]bool
}

// liveTransfer is one run of a transfer's fetch.
type liveTransfer struct {
	root cid.Cid
	sub  string // the entry under root it fetches, "" for root itself
	// target is what the fetch writes: root, or the entry sub leads to once it is resolved
	// (undefined until then).
	target   cid.Cid
	cancel   context.CancelFunc
	done     chan struct{} // closed once the fetch returned and its end is recorded
	progress FetchProgress // until reported, the figures the log had
	reported bool          // progress is the fetch's own
	result   FetchResult
	err      error
	ended    bool
	// stop is FetchPaused or FetchCanceled when the user stopped it (already recorded); keep
	// says a canceled one keeps what it received.
	stop store.EventType
	keep bool
	// patient says a fetch that finds no provider is tried again (with backoff) instead of
	// failing: a transfer the daemon resumed when it started.
	patient bool
}

func newTransferManager(n *Node, ex *exchange) *transferManager {
	ctx, cancel := context.WithCancel(context.Background())
	return &transferManager{n: n, ex: ex, st: ex.st, max: n.cfg.MaxFetches, ctx: ctx, cancel: cancel,
		running: map[string]*liveTransfer{}, ended: map[string]*liveTransfer{}, changed: make(chan struct{})}
}

// start resumes what the log left queued or running (paused ones stay paused). Called once the
// node runs; the fetches begin as soon as Start returns.
func (m *transferManager) start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.atStart = map[string]bool{}
	for _, t := range m.st.Transfers().List() {
		if t.State.Active() {
			m.atStart[t.ID] = true
		}
	}
	m.scheduleLocked()
}

// close stops every fetch without recording anything: the log still says queued or running,
// and the next start resumes them.
func (m *transferManager) close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// changes is closed at the next change of a transfer's state or figures.
func (m *transferManager) changes() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *transferManager) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *transferManager) recordLocked(e store.Event) error {
	if err := m.st.Record(e); err != nil {
		return fmt.Errorf("recording %s of transfer %s: %w", e.Type, e.Transfer, err)
	}
	m.notifyLocked()
	return nil
}

// newIDLocked is 8 hex digits no transfer has.
func (m *transferManager) newIDLocked() string {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if _, taken := m.st.Transfers().Get(id); !taken {
			return id
		}
	}
}

// queue adds a fetch of root (or of the entry opts.Path names under it) to the queue, or
// returns the transfer of the same that is already queued or running (attached true); a paused
// one is resumed. A transfer of it to the same output that completed in this process is returned
// too, as long as the file is still in place.
func (m *transferManager) queue(root cid.Cid, opts FetchOptions) (store.Transfer, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.Transfer{}, false, ErrNotStarted
	}
	name, sub := "", strings.Join(opts.Path, "/")
	if len(opts.Path) > 0 {
		name = opts.Path[len(opts.Path)-1]
	}
	name, out, _, err := m.ex.target(root, name, opts)
	if err != nil && !errors.Is(err, ErrExists) {
		return store.Transfer{}, false, err
	}
	for _, t := range m.st.Transfers().List() {
		if t.CID != root.String() || t.Sub != sub {
			continue
		}
		switch {
		case t.State.Active():
			return t, true, nil
		case t.State == store.TransferPaused:
			if err := m.recordLocked(store.Event{Type: store.FetchResumed, Transfer: t.ID, Root: t.CID}); err != nil {
				return store.Transfer{}, false, err
			}
			m.scheduleLocked()
			t, _ = m.st.Transfers().Get(t.ID)
			return t, true, nil
		case t.State == store.TransferDone && t.Output == out && m.ended[t.ID] != nil && m.ended[t.ID].target.Defined():
			if f, ok := m.st.File(m.ended[t.ID].target); ok && f.State == store.Complete && f.Path == out && m.st.Intact(f) {
				return t, true, nil
			}
		}
	}
	if err != nil {
		return store.Transfer{}, false, err
	}
	id := m.newIDLocked()
	if err := m.recordLocked(store.Event{Type: store.FetchQueued, Transfer: id, Root: root.String(), Sub: sub, Name: name, Path: out,
		Force: opts.Force, Limit: opts.Limit}); err != nil {
		return store.Transfer{}, false, err
	}
	m.scheduleLocked()
	t, _ := m.st.Transfers().Get(id)
	return t, false, nil
}

// scheduleLocked starts queued transfers while fewer than max run: first those the log says
// were running (a previous process stopped), then the queue in order. A transfer whose fetch
// (or any fetch of the same file) has not returned yet waits for it.
func (m *transferManager) scheduleLocked() {
	if m.closed || len(m.running) >= m.max {
		return
	}
	list := m.st.Transfers().List()
	var next []store.Transfer
	for _, t := range list {
		if t.State == store.TransferRunning && m.running[t.ID] == nil {
			next = append(next, t)
		}
	}
	for _, t := range list {
		if t.State == store.TransferQueued {
			next = append(next, t)
		}
	}
	for _, t := range next {
		if len(m.running) >= m.max {
			return
		}
		if m.running[t.ID] != nil || m.busyLocked(t.CID, t.Sub) {
			continue
		}
		m.startLocked(t)
	}
}

func (m *transferManager) busyLocked(root, sub string) bool {
	for _, lt := range m.running {
		if lt.root.String() == root && lt.sub == sub {
			return true
		}
	}
	return false
}

func (m *transferManager) startLocked(t store.Transfer) {
	root, err := cid.Decode(t.CID)
	if err != nil { // the log checks roots; never here
		_ = m.recordLocked(store.Event{Type: store.FetchFailed, Transfer: t.ID, Error: err.Error()})
		return
	}
	if err := m.recordLocked(store.Event{Type: store.FetchStarted, Transfer: t.ID, Root: t.CID}); err != nil {
		logger().Warn("starting transfer", "id", t.ID, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	lt := &liveTransfer{root: root, sub: t.Sub, cancel: cancel, done: make(chan struct{}), patient: m.atStart[t.ID]}
	if t.Sub == "" {
		lt.target = root
	}
	lt.progress.Size, lt.progress.Have = t.Size, t.Have
	m.running[t.ID] = lt
	m.wg.Add(1)
	go m.run(ctx, t, lt)
}

// run is one transfer's fetch, from start to the event that says how it ended.
func (m *transferManager) run(ctx context.Context, t store.Transfer, lt *liveTransfer) {
	defer m.wg.Done()
	defer close(lt.done) // after the end is recorded (and mu released)
	defer lt.cancel()
	opts := FetchOptions{Output: t.Output, Force: t.Force, Limit: t.Limit,
		Progress: func(p FetchProgress) {
			m.mu.Lock()
			lt.progress, lt.reported = p, true
			m.notifyLocked()
			m.mu.Unlock()
		}}
	if t.Sub != "" {
		opts.Path = strings.Split(t.Sub, "/")
		opts.resolved = func(c cid.Cid) {
			m.mu.Lock()
			lt.target = c
			m.mu.Unlock()
		}
	}
	res, err := m.n.Fetch(ctx, lt.root, opts)
	// A transfer the daemon resumed when it started waits for the network to come back (its
	// seeder restarting too, a bootstrap peer slow to answer) instead of failing for want of
	// providers: its fetch is tried again, the wait doubling to a minute, until it completes,
	// fails otherwise, or is paused or canceled. A transfer queued while the daemon runs fails
	// at once, as a foreground fetch must.
	for wait := time.Second; lt.patient && errors.Is(err, transfer.ErrNoProviders) && sleep(ctx, wait); wait = min(2*wait, time.Minute) {
		logger().Info("transfer tried again", "id", t.ID, "root", t.CID, "after", wait)
		res, err = m.n.Fetch(ctx, lt.root, opts)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	lt.result, lt.err, lt.ended = res, err, true
	delete(m.running, t.ID)
	m.endedLocked(t.ID, lt)
	size, have := lt.progress.Size, lt.progress.Have
	var rerr error
	switch {
	case err == nil:
		rerr = m.recordLocked(store.Event{Type: store.FetchCompleted, Transfer: t.ID, Root: t.CID, Size: res.File.Size, Have: res.File.Size})
	case lt.stop == store.FetchCanceled:
		if !lt.keep && lt.target.Defined() {
			m.discardLocked(lt.target, t.Output)
		}
	case lt.stop == store.FetchPaused:
	case m.ctx.Err() != nil:
		// The daemon stops: the log still says running, and the next start resumes it.
	default:
		rerr = m.recordLocked(store.Event{Type: store.FetchFailed, Transfer: t.ID, Root: t.CID, Error: err.Error(), Size: size, Have: have})
	}
	if rerr != nil {
		logger().Warn("transfer ended", "id", t.ID, "err", rerr)
	}
	m.notifyLocked()
	m.scheduleLocked()
}

func (m *transferManager) endedLocked(id string, lt *liveTransfer) {
	if _, ok := m.ended[id]; !ok {
		m.order = append(m.order, id)
	}
	m.ended[id] = lt
	for len(m.order) > keepEnded {
		delete(m.ended, m.order[0])
		m.order = m.order[1:]
	}
}

// discardLocked deletes what a canceled transfer received: its partial entry and .part file.
func (m *transferManager) discardLocked(root cid.Cid, out string) {
	if f, ok := m.st.File(root); ok && f.State == store.Partial && !f.Pinned {
		if err := m.st.Remove(root); err != nil {
			logger().Warn("discarding a canceled transfer", "root", root, "err", err)
		}
	}
	if err := os.Remove(store.PartPath(out, root)); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger().Warn("discarding a canceled transfer", "root", root, "err", err)
	}
}

// get returns the transfer, or ErrUnknownTransfer.
func (m *transferManager) get(id string) (store.Transfer, error) {
	t, ok := m.st.Transfers().Get(id)
	if !ok {
		return store.Transfer{}, fmt.Errorf("%w: %s", ErrUnknownTransfer, id)
	}
	return t, nil
}

func (m *transferManager) haveLocked(t store.Transfer) uint64 {
	if lt := m.running[t.ID]; lt != nil {
		return lt.progress.Have
	}
	return t.Have
}

// waitStopped waits until a fetch that was told to stop has returned (or ctx ends), so that an
// action answers once no more bytes come in.
func waitStopped(ctx context.Context, lt *liveTransfer) {
	if lt == nil {
		return
	}
	select {
	case <-lt.done:
	case <-ctx.Done():
	}
}

// pause stops a queued or running transfer; what it received stays, and resume goes on from it.
// It returns once the fetch has stopped.
func (m *transferManager) pause(ctx context.Context, id string) error {
	lt, err := m.pauseStop(id)
	waitStopped(ctx, lt)
	return err
}

func (m *transferManager) pauseStop(id string) (*liveTransfer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.get(id)
	if err != nil {
		return nil, err
	}
	if !t.State.Active() {
		return nil, fmt.Errorf("transfer %s is %s: %w (only a queued or running one can be paused)", id, t.State, ErrTransferState)
	}
	if err := m.recordLocked(store.Event{Type: store.FetchPaused, Transfer: id, Root: t.CID, Have: m.haveLocked(t)}); err != nil {
		return nil, err
	}
	lt := m.running[id]
	if lt != nil {
		lt.stop = store.FetchPaused
		lt.cancel()
	}
	return lt, nil
}

// resume queues a paused, failed or canceled transfer again, at the back; it goes on from what
// is here. One that is queued or running is left as it is.
func (m *transferManager) resume(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.get(id)
	if err != nil {
		return err
	}
	switch t.State {
	case store.TransferQueued, store.TransferRunning:
		return nil
	case store.TransferDone:
		return fmt.Errorf("transfer %s is done: %w", id, ErrTransferState)
	}
	if err := m.recordLocked(store.Event{Type: store.FetchResumed, Transfer: id, Root: t.CID}); err != nil {
		return err
	}
	m.scheduleLocked()
	return nil
}

// cancelTransfer gives a transfer up; what it received is deleted unless keep. It returns once
// the fetch has stopped (and what it received is gone).
func (m *transferManager) cancelTransfer(ctx context.Context, id string, keep bool) error {
	lt, err := m.cancelStop(id, keep)
	waitStopped(ctx, lt)
	return err
}

func (m *transferManager) cancelStop(id string, keep bool) (*liveTransfer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.get(id)
	if err != nil {
		return nil, err
	}
	switch t.State {
	case store.TransferDone:
		return nil, fmt.Errorf("transfer %s is done: %w (remove the file with `peer rm`)", id, ErrTransferState)
	case store.TransferCanceled:
		return m.running[id], nil
	}
	if err := m.recordLocked(store.Event{Type: store.FetchCanceled, Transfer: id, Root: t.CID, Have: m.haveLocked(t)}); err != nil {
		return nil, err
	}
	if lt := m.running[id]; lt != nil {
		lt.stop, lt.keep = store.FetchCanceled, keep
		lt.cancel() // run discards when the fetch has returned
		return lt, nil
	}
	if !keep {
		if target, ok := m.targetLocked(t); ok {
			m.discardLocked(target, t.Output)
		}
	}
	return nil, nil
}

// targetLocked is what a transfer that is not running writes: its root, or the entry its path
// leads to, as a run in this process resolved it or as the blocks held here resolve it.
func (m *transferManager) targetLocked(t store.Transfer) (cid.Cid, bool) {
	root, err := cid.Decode(t.CID)
	if err != nil {
		return cid.Undef, false
	}
	if t.Sub == "" {
		return root, true
	}
	if lt := m.ended[t.ID]; lt != nil && lt.target.Defined() {
		return lt.target, true
	}
	target, err := m.st.Resolve(m.ctx, root, strings.Split(t.Sub, "/"))
	return target, err == nil
}

// top moves a queued transfer to the front of the queue.
func (m *transferManager) top(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.get(id)
	if err != nil {
		return err
	}
	if t.State != store.TransferQueued {
		return fmt.Errorf("transfer %s is %s: %w (only a queued one can move to the front)", id, t.State, ErrTransferState)
	}
	return m.recordLocked(store.Event{Type: store.FetchPromoted, Transfer: id, Root: t.CID})
}

// viewLocked is a transfer as the API shows it: the log's record and, while it runs, its figures.
func (m *transferManager) viewLocked(t store.Transfer) api.Transfer {
	v := api.Transfer{ID: t.ID, Direction: api.Download, CID: t.CID, Path: t.Sub, Name: t.Name, State: string(t.State), Output: t.Output,
		Bytes: int64(t.Size), BytesDone: int64(t.Have), Limit: t.Limit, Error: t.Error, Queued: t.Queued, Changed: t.Changed}
	lt := m.running[t.ID]
	if lt == nil {
		lt = m.ended[t.ID]
	}
	if lt != nil { // its figures, also while a paused or canceled one stops, and after
		p := lt.progress
		if p.Size > 0 {
			v.Bytes = int64(p.Size)
		}
		v.BytesDone, v.Peers, v.Received, v.Resumed = int64(p.Have), p.Peers, p.Progress.Bytes, int64(p.Found)
		if t.State == store.TransferRunning {
			v.Rate = p.Rate
		}
		if lt.ended && lt.err == nil {
			v.Peers, v.Received, v.Resumed = lt.result.Stats.Sources(), lt.result.Stats.Received, int64(lt.result.Resumed)
		}
	}
	if t.State == store.TransferDone && v.Bytes > 0 {
		v.BytesDone = v.Bytes
	}
	return v
}

// list is every download, in queue order, then every peer fetching from the node.
func (m *transferManager) list() []api.Transfer {
	m.mu.Lock()
	ts := m.st.Transfers().List()
	out := make([]api.Transfer, 0, len(ts))
	for _, t := range ts {
		out = append(out, m.viewLocked(t))
	}
	m.mu.Unlock()
	return append(out, m.ex.uploads()...)
}

// uploads are the peers fetching from the node now: their open transfer streams, the block
// bytes sent to each since its first stream opened, the average rate since then, and the file
// they fetch: the first held file among the first CIDs their streams asked for (a fetch asks for
// its root first), else the first of those CIDs.
func (ex *exchange) uploads() []api.Transfer {
	serving := ex.xfer.Serving()
	out := make([]api.Transfer, 0, len(serving))
	for p, s := range serving {
		rate := 0.0
		if d := time.Since(s.Since).Seconds(); d > 0 {
			rate = float64(s.Sent) / d
		}
		t := api.Transfer{ID: "up-" + p.String()[max(0, len(p.String())-8):], Direction: api.Upload, Peer: p.String(), State: string(store.TransferRunning),
			BytesDone: s.Sent, Rate: rate, Peers: 1, Streams: s.Streams, Queued: s.Since, Changed: s.Since}
		for _, c := range s.Wants {
			if f, ok := ex.st.File(c); ok {
				t.CID, t.Name = f.CID, f.Name
				break
			}
		}
		if t.CID == "" && len(s.Wants) > 0 {
			t.CID = s.Wants[0].String()
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// stopping reports whether the node is closing (a request that ends then was not abandoned by
// its client).
func (n *Node) stopping() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// transfers returns the transfer manager.
func (n *Node) transfers() (*transferManager, error) {
	ex, err := n.exchange()
	if err != nil {
		return nil, err
	}
	return ex.tm, nil
}

// waitTick bounds how long a follower waits between looks at a transfer (progress is sent at
// most this often).
const waitTick = 250 * time.Millisecond

// sleep waits for d, or until ctx ends: it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
