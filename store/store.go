package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"peer/store/eventlog"
	"peer/store/unixfs"
)

var (
	// ErrUnknownFile means the index holds no file with that root.
	ErrUnknownFile = errors.New("no such file in this repo")
	// ErrBusy means GC did not run because an import or a fetch is writing blocks.
	ErrBusy = errors.New("an import or a fetch is running; run gc again when it has ended")
	// ErrFetching means a file cannot be removed while it is being fetched.
	ErrFetching = errors.New("is being fetched: stop the fetch first")
)

// snapshotEvery is how many events may follow the last snapshot before a new one is written.
const snapshotEvery = 4096

// logger is the package's logger, taken from the default when it logs: a daemon sets its handler
// and level after every package is initialized.
func logger() *slog.Logger { return slog.Default().With("pkg", "store") }

// Store is an open repo: its blocks, its event log and the index projected from it. One process
// holds a repo at a time (an exclusive lock taken by Open). Methods are safe for concurrent use.
type Store struct {
	dir    string
	lock   *repoLock
	blocks *blockFiles
	log    *eventlog.Log
	rec    eventlog.Recovery

	// recMu orders Record calls (Seq, append, apply) and is taken before mu. mu guards the index
	// and what goes with it; it is not held during the log's fsync, so readers (Files, block
	// lookups for serving) never wait for one.
	recMu   sync.Mutex
	mu      sync.Mutex // guards ix, snapSeq, marks, subs, refs, refsGen, closed
	ix      *index
	snapSeq uint64 // Seq of the last snapshot
	marks   []mark // ascending by seq, the first at the log's start
	subs    map[chan Event]chan struct{}
	active  map[string]*Download // downloads in progress, by root
	refs    map[string][]refLoc  // leaf key → where referenced copies live; nil until first needed
	refsGen uint64               // counts events that invalidate refs, so a stale build is redone
	// served is the blocks offered to peers (served.go); nil until first needed.
	served    map[string]bool
	servedAdd []cid.Cid // roots added since served was built, whose blocks it still lacks
	servedGen uint64
	servedN   int // full builds of served, for tests
	// servedBuild serializes building served, as refsBuild does refs.
	servedBuild sync.Mutex
	// refsBuild serializes building refs (taken before mu, never while holding it).
	refsBuild sync.Mutex
	// verifyMu guards what serving has verified (verify.go); taken after mu, never before.
	verifyMu  sync.Mutex
	refChecks map[string]map[string]*refCheck // referenced root → file path → the stat verified under, the leaves
	owned     verifiedSet
	hashed    atomic.Int64 // blocks hashed to serve them
	// gcMu is held shared by imports and downloads while they write blocks that no event names
	// yet, and exclusively by GC, which would otherwise take those blocks for garbage.
	gcMu     sync.RWMutex
	nowFunc  func() time.Time
	closed   bool
	closeErr error
}

// Open opens the repo at dir, taking its lock. A torn tail of the event log is cut and reported
// by Recovery; mid-log corruption is an error that changes nothing.
func Open(dir string) (*Store, error) {
	if err := checkVersion(dir); err != nil {
		return nil, err
	}
	lk, err := lockRepo(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:     dir,
		lock:    lk,
		blocks:  &blockFiles{dir: filepath.Join(dir, blocksDir), dirs: map[string]bool{}},
		subs:    map[chan Event]chan struct{}{},
		active:  map[string]*Download{},
		nowFunc: time.Now,
	}
	if err := s.open(); err != nil {
		lk.release()
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	l, rec, err := eventlog.Open(filepath.Join(s.dir, logFile), eventlog.Options{})
	if err != nil {
		return fmt.Errorf("opening event log: %w", err)
	}
	s.log, s.rec = l, rec
	if rec.Cut() {
		logger().Warn("event log tail cut", "at", rec.TruncatedAt, "dropped", rec.Dropped, "reason", rec.Reason)
	}
	ix, from, marks := s.loadSnapshot()
	// snapSeq counts from the snapshot actually used, so the events replayed after it count
	// towards the next one; with no usable snapshot every event does.
	s.snapSeq = ix.Seq
	if err := replay(l, from, ix, &marks, func(Event) bool { return true }); err != nil {
		// A snapshot that does not line up with the log is only a cache: rebuild from scratch.
		logger().Warn("snapshot does not match the event log; replaying it all", "err", err)
		ix = newIndex()
		s.snapSeq = 0
		marks = []mark{{Seq: 1, Off: eventlog.HeaderSize}}
		if err := replay(l, eventlog.HeaderSize, ix, &marks, func(Event) bool { return true }); err != nil {
			l.Close()
			return err
		}
	}
	s.ix, s.marks = ix, marks
	return nil
}

// mark says where the event numbered Seq begins in the log, so that Events can start reading at
// the last mark before the events it is asked for rather than at the log's start. Marks are left
// every markEvery events or so, by Record and by replay, and kept in the snapshot.
type mark struct {
	Seq uint64 `json:"seq"`
	Off int64  `json:"off"`
}

const markEvery = 1024

// addMark notes that event seq starts at off, if the last mark is far enough behind.
func addMark(marks *[]mark, seq uint64, off int64) {
	if m := *marks; seq >= m[len(m)-1].Seq+markEvery {
		*marks = append(m, mark{Seq: seq, Off: off})
	}
}

// validMarks reports whether marks can be trusted for a log whose snapshot ends at end after
// event seq: they start at the log's start and climb in both seq and offset within those bounds.
func validMarks(marks []mark, seq uint64, end int64) bool {
	if len(marks) == 0 || marks[0] != (mark{Seq: 1, Off: eventlog.HeaderSize}) {
		return false
	}
	for i := 1; i < len(marks); i++ {
		if marks[i].Seq <= marks[i-1].Seq || marks[i].Off <= marks[i-1].Off || marks[i].Seq > seq+1 || marks[i].Off > end {
			return false
		}
	}
	return true
}

// snapshotVersion is the snapshot format. 2 added the referenced files' modification times; a
// snapshot of another version is ignored and the log replayed.
const snapshotVersion = 2

type snapshot struct {
	Version int    `json:"version"`
	Offset  int64  `json:"offset"` // log offset just after the last event in Index
	Index   *index `json:"index"`
	Marks   []mark `json:"marks,omitempty"` // where events start, for Events; optional
}

// loadSnapshot returns the snapshot's index, the log offset to replay from and the marks so far,
// or an empty index and the start of the log when there is no usable snapshot.
func (s *Store) loadSnapshot() (*index, int64, []mark) {
	start := []mark{{Seq: 1, Off: eventlog.HeaderSize}}
	b, err := os.ReadFile(filepath.Join(s.dir, snapshotFile))
	if err != nil {
		return newIndex(), eventlog.HeaderSize, start
	}
	var sn snapshot
	err = json.Unmarshal(b, &sn)
	switch {
	case err != nil:
	case sn.Version != snapshotVersion:
		err = fmt.Errorf("format %d, want %d", sn.Version, snapshotVersion)
	case sn.Index == nil:
		err = errors.New("no index")
	case sn.Offset < eventlog.HeaderSize || sn.Offset > s.log.End():
		err = fmt.Errorf("offset %d outside the log [%d, %d]", sn.Offset, eventlog.HeaderSize, s.log.End())
	}
	if err != nil {
		logger().Warn("ignoring unusable snapshot; replaying the whole log", "err", err)
		return newIndex(), eventlog.HeaderSize, start
	}
	if sn.Index.Files == nil {
		sn.Index.Files = map[string]*File{}
	}
	if sn.Index.Catalog == nil {
		sn.Index.Catalog = map[string]*offer{}
	}
	if sn.Index.Transfers == nil { // a snapshot from before transfers: none were recorded
		sn.Index.Transfers = newTransfers()
	}
	marks := start // an older snapshot without marks, or bad ones: Events starts at the log's start
	if validMarks(sn.Marks, sn.Index.Seq, sn.Offset) {
		marks = sn.Marks
	}
	addMark(&marks, sn.Index.Seq+1, sn.Offset)
	return sn.Index, sn.Offset, marks
}

// replay applies the log's events from offset to ix while keep says so. Events must follow on
// from ix.Seq without a gap, which is how a stale snapshot is recognized. JSON decoding is most of
// the cost, so batches of records are decoded on every core while the scan goes on, and applied
// in log order.
func replay(l *eventlog.Log, from int64, ix *index, marks *[]mark, keep func(Event) bool) error {
	type batch struct {
		offs []int64
		recs [][]byte
		evs  []Event
		err  error
		done chan struct{}
	}
	const batchSize = 2048
	workers := runtime.GOMAXPROCS(0)
	todo := make(chan *batch, workers)
	ordered := make(chan *batch, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range todo {
				b.evs = make([]Event, len(b.recs))
				for i, rec := range b.recs {
					if b.evs[i], b.err = DecodeEvent(rec); b.err != nil {
						b.err = fmt.Errorf("event at offset %d: %w", b.offs[i], b.err)
						b.evs = b.evs[:i]
						break
					}
				}
				close(b.done)
			}
		}()
	}
	// The applier consumes batches in the order they were scanned. Once it stops (an error, or
	// keep said no), the scan stops too.
	var stopped atomic.Bool
	applied := make(chan error, 1)
	go func() {
		var err error
		for b := range ordered {
			<-b.done
			if err != nil {
				continue // drain
			}
			for i, e := range b.evs {
				if e.Seq != ix.Seq+1 {
					err = fmt.Errorf("event at offset %d has seq %d, want %d", b.offs[i], e.Seq, ix.Seq+1)
					break
				}
				if !keep(e) {
					err = errStopReplay
					break
				}
				ix.apply(e)
				if marks != nil {
					addMark(marks, e.Seq, b.offs[i])
				}
			}
			if err == nil {
				err = b.err
			}
			if err != nil {
				stopped.Store(true)
			}
		}
		applied <- err
	}()
	cur := &batch{done: make(chan struct{})}
	send := func() {
		ordered <- cur
		todo <- cur
		cur = &batch{done: make(chan struct{})}
	}
	scanErr := l.Scan(from, func(off int64, rec []byte) error {
		if stopped.Load() {
			return errStopReplay
		}
		cur.offs = append(cur.offs, off)
		cur.recs = append(cur.recs, bytes.Clone(rec))
		if len(cur.recs) == batchSize {
			send()
		}
		return nil
	})
	if len(cur.recs) > 0 {
		send()
	}
	close(todo)
	close(ordered)
	wg.Wait()
	if errors.Is(scanErr, errStopReplay) {
		scanErr = nil // the applier's error says why
	}
	return errors.Join(scanErr, <-applied)
}

var errStopReplay = errors.New("stop")

// writeSnapshot saves the index so the next Open replays only what follows. Called with s.recMu
// held, so no event is appended meanwhile, and without s.mu.
func (s *Store) writeSnapshot() error {
	s.mu.Lock()
	b, err := json.Marshal(snapshot{Version: snapshotVersion, Offset: s.log.End(), Index: s.ix, Marks: s.marks})
	seq := s.ix.Seq
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(s.dir, snapshotFile), b, 0o600); err != nil {
		return fmt.Errorf("writing snapshot: %w", err)
	}
	s.mu.Lock()
	s.snapSeq = seq
	s.mu.Unlock()
	return nil
}

// Close writes a snapshot if many events followed the last one, closes the log and releases the
// lock. It is idempotent.
func (s *Store) Close() error {
	s.recMu.Lock() // waits for a Record in progress
	defer s.recMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.closeErr
	}
	s.closed = true
	for ch := range s.subs {
		close(ch)
	}
	s.subs = nil
	due := s.ix.Seq-s.snapSeq >= 64
	s.mu.Unlock()
	var errs []error
	if due {
		errs = append(errs, s.writeSnapshot())
	}
	errs = append(errs, s.log.Close(), s.lock.release())
	s.mu.Lock()
	s.closeErr = errors.Join(errs...)
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Dir is the repo directory.
func (s *Store) Dir() string { return s.dir }

// Recovery says what Open had to cut from the log's tail (zero when nothing).
func (s *Store) Recovery() eventlog.Recovery { return s.rec }

// Record appends events to the log as one durable group (one fsync) and applies them to the index.
// Seq and Time are filled in. Callers with many events (announcements) should pass them together.
func (s *Store) Record(evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	s.mu.Lock()
	closed, last := s.closed, s.ix.Seq // only Record changes ix.Seq, and recMu is held
	s.mu.Unlock()
	if closed {
		return eventlog.ErrClosed
	}
	now := s.nowFunc().UTC()
	recs := make([][]byte, len(evs))
	for i := range evs {
		evs[i].Seq = last + uint64(i) + 1
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
		b, err := encodeEvent(evs[i])
		if err != nil {
			return err
		}
		recs[i] = b
	}
	first, err := s.log.Append(recs...)
	if err != nil {
		return fmt.Errorf("recording %s: %w", evs[0].Type, err)
	}
	s.mu.Lock()
	addMark(&s.marks, evs[0].Seq, first)
	for _, e := range evs {
		s.ix.apply(e)
		s.applyRefs(e)
		s.applyServed(e)
		for ch, lag := range s.subs {
			select {
			case ch <- e:
			default:
				// A subscriber that does not keep up misses events rather than stalling the
				// node; it is told, and reads what it missed from the log (Follow does).
				select {
				case lag <- struct{}{}:
				default:
				}
			}
		}
	}
	due := s.ix.Seq-s.snapSeq >= snapshotEvery
	s.mu.Unlock()
	if due {
		if err := s.writeSnapshot(); err != nil {
			logger().Warn("snapshot failed", "err", err)
		}
	}
	return nil
}

// Subscribe returns a channel of events recorded from now on, and a function that ends the
// subscription. A subscriber that falls more than 1024 events behind misses events; use Follow
// for a stream that never misses one.
func (s *Store) Subscribe() (<-chan Event, func()) {
	ch, _, stop := s.subscribe()
	return ch, stop
}

// subscribe is Subscribe that also returns the subscription's lag signal: it receives (once
// per burst, capacity 1) whenever an event was dropped because ch was full. Every dropped event
// is in the log before the signal is sent.
func (s *Store) subscribe() (<-chan Event, <-chan struct{}, func()) {
	ch, lag := make(chan Event, 1024), make(chan struct{}, 1)
	s.mu.Lock()
	if s.closed {
		close(ch)
		s.mu.Unlock()
		return ch, lag, func() {}
	}
	s.subs[ch] = lag
	s.mu.Unlock()
	var once sync.Once
	return ch, lag, func() {
		once.Do(func() {
			s.mu.Lock()
			if _, ok := s.subs[ch]; ok {
				delete(s.subs, ch)
				close(ch)
			}
			s.mu.Unlock()
		})
	}
}

// ErrStoreClosed ends a Follow when the store is closed.
var ErrStoreClosed = errors.New("the repo was closed")

// Follow calls fn for every event with Seq >= from, in order, then for each new one as it is
// recorded, until ctx ends (it returns ctx's error), fn fails (its error), or the store closes
// (ErrStoreClosed). No event is missed or repeated, however slow fn is: Follow knows the number
// of the last event it passed on, and when the live stream falls behind and drops events it
// reads the missing ones from the log. fn is called from the calling goroutine.
func (s *Store) Follow(ctx context.Context, from uint64, fn func(Event) error) error {
	// Subscribe before reading the log, so no event falls between the two.
	ch, lag, stop := s.subscribe()
	defer stop()
	next := from
	catchUp := func() error {
		err := s.Events(next, func(e Event) error {
			next = e.Seq + 1
			return fn(e)
		})
		if errors.Is(err, eventlog.ErrClosed) {
			return ErrStoreClosed
		}
		return err
	}
	if err := catchUp(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lag:
			if err := catchUp(); err != nil {
				return err
			}
		case e, ok := <-ch:
			switch {
			case !ok:
				return ErrStoreClosed
			case e.Seq < next: // already passed on from the log
			case e.Seq > next: // a gap: events were dropped; the log has them, and e
				if err := catchUp(); err != nil {
					return err
				}
			default:
				next = e.Seq + 1
				if err := fn(e); err != nil {
					return err
				}
			}
		}
	}
}

// Events calls fn for every event with Seq >= from, in order. It reads the log from the last mark
// at or before from, not from its start; a mark that does not lead to its event (a damaged
// snapshot) is dropped and the log read from its start.
func (s *Store) Events(from uint64, fn func(Event) error) error {
	s.mu.Lock()
	i := max(sort.Search(len(s.marks), func(i int) bool { return s.marks[i].Seq > from })-1, 0)
	m := s.marks[i]
	s.mu.Unlock()
	first := true
	err := s.log.Scan(m.Off, func(off int64, rec []byte) error {
		e, err := DecodeEvent(rec)
		if first && (err != nil || e.Seq != m.Seq) {
			return errBadMark
		}
		first = false
		if err != nil {
			return fmt.Errorf("event at offset %d: %w", off, err)
		}
		if e.Seq < from {
			return nil
		}
		return fn(e)
	})
	if m.Off != eventlog.HeaderSize && first && err != nil {
		logger().Warn("event log mark does not match the log; reading it from the start", "seq", m.Seq, "offset", m.Off, "err", err)
		s.mu.Lock()
		if i < len(s.marks) && s.marks[i] == m { // not already dropped by a concurrent call
			s.marks = slices.Delete(s.marks, i, len(s.marks))
		}
		s.mu.Unlock()
		return s.Events(from, fn)
	}
	return err
}

var errBadMark = errors.New("no event where a mark says")

// Files lists the files held now.
func (s *Store) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	files := s.ix.files()
	for i, f := range files {
		if d := s.active[f.CID]; d != nil && f.State == Partial {
			files[i].Have = d.Have()
			if size := d.Size(); size > 0 {
				files[i].Size = size
			}
		}
	}
	return files
}

// File returns one held file.
func (s *Store) File(root cid.Cid) (File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.ix.Files[root.String()]
	if !ok {
		return File{}, false
	}
	c := *f
	c.Root = root
	return c, true
}

// FilesAt lists the files held at time t, by replaying the log up to t.
func (s *Store) FilesAt(t time.Time) ([]File, error) {
	ix := newIndex()
	err := replay(s.log, eventlog.HeaderSize, ix, nil, func(e Event) bool { return !e.Time.After(t) })
	if err != nil && !errors.Is(err, errStopReplay) {
		return nil, err
	}
	return ix.files(), nil
}

// LastSeen says when peer last announced root, as the catalog knows it.
func (s *Store) LastSeen(root, peer string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ix.Catalog[root]
	if o == nil {
		return time.Time{}, false
	}
	t, ok := o.Providers[peer]
	return t, ok
}

// Search lists what the network announced, matching term, seen within ttl.
func (s *Store) Search(term string, ttl time.Duration) []Offer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ix.search(term, s.nowFunc().Add(-ttl))
}

// Replayed rebuilds the index from the log alone, up to the live index's last event, and reports
// whether it equals the live one: how tests prove the projection is a pure function of the log.
// Events recorded meanwhile are left out of both sides.
func (s *Store) Replayed() (files []File, same bool, err error) {
	s.mu.Lock()
	live, err := json.Marshal(s.ix)
	seq := s.ix.Seq
	s.mu.Unlock()
	if err != nil {
		return nil, false, err
	}
	ix := newIndex()
	err = replay(s.log, eventlog.HeaderSize, ix, nil, func(e Event) bool { return e.Seq <= seq })
	if err != nil && !errors.Is(err, errStopReplay) {
		return nil, false, err
	}
	got, err := json.Marshal(ix)
	if err != nil {
		return nil, false, err
	}
	return ix.files(), string(live) == string(got), nil
}

// AddOptions tune an import.
type AddOptions struct {
	ChunkSize int              // 0: 1 MiB
	Progress  func(read int64) // optional; bytes read so far
	// Reference keeps the file where it is instead of copying its bytes into the repo: only the
	// small inner DAG nodes are stored, and leaves are read (and verified) from Path. Path must
	// then name the file r reads. Without Reference, a Path is recorded as the copy's source.
	Reference bool
	Path      string
	// Hidden includes, in a folder, entries whose names start with '.' (AddTree).
	Hidden bool
	// FileDone, if not nil, is called after each file of a folder is imported (AddTree), from
	// several goroutines at once.
	FileDone func(path string, size uint64)
}

// Hash computes the root CID of r's bytes without storing anything.
func Hash(ctx context.Context, r io.Reader, opts AddOptions) (unixfs.ImportResult, error) {
	return unixfs.Import(ctx, r, unixfs.ImportOptions{ChunkSize: opts.ChunkSize, Progress: opts.Progress}, nil)
}

// Add imports r's bytes as file name. Every block is durable before the FileAdded event is. An
// import that fails (a read error, a full disk, ctx) removes the blocks it wrote that no other
// file needs, so that nothing is left for gc; when an import or a fetch running at the same time
// keeps it from doing so, the error says to run gc.
func (s *Store) Add(ctx context.Context, r io.Reader, name string, opts AddOptions) (File, error) {
	f, written, err := s.add(ctx, r, name, opts)
	if err != nil && len(written) > 0 {
		err = s.discard(written, err)
	}
	return f, err
}

// discard removes the blocks a failed import wrote, except those a held file needs (another
// import may have found them here and used them). It needs GC's exclusive hold: without it, it
// returns cause with a hint to run gc.
func (s *Store) discard(written []cid.Cid, cause error) error {
	if !s.gcMu.TryLock() {
		return fmt.Errorf("%w (%d blocks it wrote are left: run `peer gc` once the other import or fetch has ended)", cause, len(written))
	}
	defer s.gcMu.Unlock()
	live := map[string]bool{}
	for _, f := range s.Files() {
		_ = s.markLive(context.Background(), f.Root, live, false)
	}
	var errs []error
	for _, c := range written {
		if !live[blockKey(c)] {
			errs = append(errs, s.blocks.remove(c))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w (removing the blocks it wrote also failed: run `peer gc`: %v)", cause, err)
	}
	return cause
}

// add is Add without the clean-up: it also returns the blocks it wrote (that were not here).
func (s *Store) add(ctx context.Context, r io.Reader, name string, opts AddOptions) (_ File, written []cid.Cid, _ error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	ev := Event{Type: FileAdded, Name: name}
	if opts.Reference {
		abs, err := filepath.Abs(opts.Path)
		if err != nil {
			return File{}, nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return File{}, nil, err
		}
		ev.Path, ev.ModTime = abs, st.ModTime().UnixNano()
	} else if opts.Path != "" {
		abs, err := filepath.Abs(opts.Path)
		if err != nil {
			return File{}, nil, err
		}
		ev.Source = abs
	}
	put := func(c cid.Cid, data []byte) error {
		created, err := s.blocks.create(c, data)
		if created {
			written = append(written, c)
		}
		return err
	}
	res, err := unixfs.Import(ctx, r, unixfs.ImportOptions{ChunkSize: opts.ChunkSize, Progress: opts.Progress}, func(b unixfs.Block) error {
		if b.Leaf && opts.Reference {
			return nil
		}
		return put(b.Cid, b.Data)
	})
	if err != nil {
		return File{}, written, err
	}
	if opts.Reference && res.Root.Prefix().Codec == cid.Raw {
		// A one-chunk file's root is its leaf: keep an owned copy so the root is always local.
		if _, err := s.blocks.get(res.Root); err != nil {
			data, err := readRef(res.Root, refLoc{path: ev.Path, size: res.Size})
			if err != nil {
				return File{}, written, fmt.Errorf("reading %s back: %w", ev.Path, err)
			}
			if err := put(res.Root, data); err != nil {
				return File{}, written, err
			}
		}
	}
	if err := s.blocks.sync(); err != nil {
		return File{}, written, err
	}
	ev.Root, ev.Size = res.Root.String(), res.Size
	if err := s.Record(ev); err != nil {
		// The event may have reached the log although the append failed: keep the blocks.
		return File{}, nil, err
	}
	f, _ := s.File(res.Root)
	return f, nil, nil
}

// AddTree imports the folder (or file) at path with everything in it, as `ipfs add -r` does:
// files, folders (empty ones too), symbolic links as links, never followed; names starting with
// '.' only with opts.Hidden. Every block is durable, with one sync for the whole tree, before the
// one FileAdded event that records the root, its file count and total size.
//
// With opts.Reference the files stay where they are (see sharedir.go): only directory nodes,
// symbolic links and files' inner nodes are stored, the event records the folder's absolute path,
// and the root is the one a copy gives. A path that is a file is added as Add adds it.
func (s *Store) AddTree(ctx context.Context, path string, opts AddOptions) (File, error) {
	if opts.Reference {
		st, err := os.Stat(path)
		if err != nil {
			return File{}, err
		}
		if !st.IsDir() {
			fh, err := os.Open(path)
			if err != nil {
				return File{}, err
			}
			defer fh.Close()
			abs, err := filepath.Abs(path)
			if err != nil {
				return File{}, err
			}
			opts.Path = abs
			return s.Add(ctx, fh, filepath.Base(abs), opts)
		}
	}
	f, written, err := s.addTree(ctx, path, opts)
	if err != nil && len(written) > 0 {
		err = s.discard(written, err)
	}
	return f, err
}

// addTree is AddTree without the clean-up: it also returns the blocks it wrote (that were not
// here).
func (s *Store) addTree(ctx context.Context, path string, opts AddOptions) (_ File, written []cid.Cid, _ error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	abs, err := filepath.Abs(path)
	if err != nil {
		return File{}, nil, err
	}
	// A file of a folder shared in place is the version hashed while its change time is older
	// than this.
	began := s.nowFunc().UnixNano()
	topts := unixfs.TreeOptions{
		ImportOptions: unixfs.ImportOptions{ChunkSize: opts.ChunkSize, Progress: opts.Progress},
		Hidden:        opts.Hidden,
		FileDone:      opts.FileDone,
	}
	var mu sync.Mutex // the importer writes several small files at once
	res, err := unixfs.ImportTree(ctx, path, topts, func(b unixfs.Block) error {
		if b.Leaf && opts.Reference {
			return nil
		}
		created, err := s.blocks.create(b.Cid, b.Data)
		if created {
			mu.Lock()
			written = append(written, b.Cid)
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		return File{}, written, err
	}
	if err := s.blocks.sync(); err != nil {
		return File{}, written, err
	}
	ev := Event{Type: FileAdded, Root: res.Root.String(), Name: filepath.Base(abs), Size: res.Size}
	if res.Dir {
		ev.Dir, ev.Files = true, res.Files
	}
	if opts.Reference {
		ev.Path, ev.ModTime = abs, began
	} else if opts.Path != "" {
		ev.Source = abs
	}
	if err := s.Record(ev); err != nil {
		return File{}, written, err
	}
	f, _ := s.File(res.Root)
	return f, nil, nil
}

// HashTree computes the root CID of the folder or file at path without storing anything.
func HashTree(ctx context.Context, path string, opts AddOptions) (unixfs.TreeResult, error) {
	topts := unixfs.TreeOptions{
		ImportOptions: unixfs.ImportOptions{ChunkSize: opts.ChunkSize, Progress: opts.Progress},
		Hidden:        opts.Hidden,
		FileDone:      opts.FileDone,
	}
	return unixfs.ImportTree(ctx, path, topts, nil)
}

// Resolve walks an IPFS path's names from root through folders to the CID they name, reading
// blocks held here.
func (s *Store) Resolve(ctx context.Context, root cid.Cid, names []string) (cid.Cid, error) {
	return unixfs.Resolve(ctx, root, names, s.GetBlock)
}

// Entry is one entry of a folder, as `peer ls CID` lists it.
type Entry struct {
	Name string `json:"name"`
	CID  string `json:"cid"`
	Kind string `json:"kind"` // "file", "dir" or "symlink"
	Size uint64 `json:"size"` // a file's bytes, a symlink's target length; 0 for a folder
}

// ListDir lists the folder dir held here, sorted by name, with each entry's kind and size.
func (s *Store) ListDir(ctx context.Context, dir cid.Cid) ([]Entry, error) {
	links, err := unixfs.ListDir(ctx, dir, s.GetBlock)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(links))
	for i, l := range links {
		e := Entry{Name: l.Name, CID: l.Cid.String()}
		var kind unixfs.DataType
		block, err := s.GetBlock(ctx, l.Cid)
		if err == nil {
			kind, e.Size, err = unixfs.Inspect(l.Cid, block)
		}
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", l.Name, err)
		}
		switch kind {
		case unixfs.File:
			e.Kind = "file"
		case unixfs.Directory:
			e.Kind = "dir"
		case unixfs.Symlink:
			e.Kind = "symlink"
		default:
			e.Kind = kind.String()
		}
		out[i] = e
	}
	return out, nil
}

// Remove forgets a file; a pinned one is refused (ErrPinned), one being fetched too
// (ErrFetching). From then on none of its blocks is served, and they stay on disk until gc
// reclaims those no other file needs; the partial file or tree of a fetch (File.Part) is deleted
// at once, since nothing else can use it.
func (s *Store) Remove(root cid.Cid) error {
	f, ok := s.File(root)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownFile, root)
	}
	if err := errIfPinned(f); err != nil {
		return err
	}
	s.mu.Lock()
	_, active := s.active[root.String()]
	s.mu.Unlock()
	if active {
		return fmt.Errorf("%s %w", root, ErrFetching)
	}
	if err := s.Record(Event{Type: FileRemoved, Root: root.String()}); err != nil {
		return err
	}
	if f.State == Partial && f.Part != "" {
		if err := os.RemoveAll(f.Part); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removed %s, but not its partial file: %w", root, err)
		}
	}
	return nil
}

// Cat streams a held file's bytes, verifying every block.
// A root that is not a UnixFS file (a dag-cbor DAG a CAR brought in, a directory) is an error
// wrapping unixfs.ErrNotFile.
func (s *Store) Cat(ctx context.Context, root cid.Cid) (io.ReadCloser, error) {
	if t := root.Type(); t != cid.Raw && t != cid.DagProtobuf {
		return nil, notFile(root, fmt.Sprintf("a %s block", codecName(t)))
	}
	if err := unixfs.CheckCID(root); err != nil {
		return nil, err
	}
	if !s.HasBlock(ctx, root) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownFile, root)
	}
	if root.Type() == cid.DagProtobuf {
		data, err := s.GetBlock(ctx, root)
		if err != nil {
			return nil, err
		}
		if _, err := unixfs.ParseNode(root, data); err != nil {
			return nil, notFile(root, "a dag-pb node that is not a UnixFS file")
		}
	}
	return unixfs.NewReader(ctx, root, s.GetBlock), nil
}

// notFile is Cat's error for a root that is held but is not a file's.
func notFile(root cid.Cid, what string) error {
	return fmt.Errorf("%s is %s, %w: only a UnixFS file has bytes to cat (`peer export %s` writes its blocks as a CAR)", root, what, unixfs.ErrNotFile, root)
}

// GetBlock returns a verified block: an owned one, or a leaf read from a referenced file.
func (s *Store) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := s.blocks.get(c)
	if !errors.Is(err, ErrNotFound) {
		return data, err
	}
	for _, loc := range s.refsFor(c) {
		data, rerr := readRef(c, loc)
		if rerr == nil {
			return data, nil
		}
		s.refFailed(loc, rerr)
	}
	return nil, err
}

// ServeBlock returns a verified block for a peer. Each block is hashed the first time it is
// served under a given stat of its file, and then only after that stat changes (verify.go), so
// serving a file again costs no hashing. Only blocks of files the node holds are served (not
// those of a removed file that gc has not reclaimed yet, nor of a file that changed), and a
// referenced file only while its size and modification time are those recorded when it was
// hashed. A referenced leaf that no longer matches records FileChanged; an owned block that does
// not, BlockCorrupt; neither is served. The block is read into alloc(size), so a server can reuse
// its buffers (nil: a new slice).
func (s *Store) ServeBlock(ctx context.Context, c cid.Cid, alloc func(n int) []byte) ([]byte, error) {
	if alloc == nil {
		alloc = makeBuf
	}
	if !s.servable(c) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if d, ok := identityData(c); ok { // its bytes are in its CID: nothing to read or verify
		return append(alloc(len(d))[:0], d...), nil
	}
	data, st, err := s.blocks.readStat(c, alloc)
	if err == nil {
		return s.serveOwned(c, data, st)
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	for _, loc := range s.refsFor(c) {
		if data, rerr := s.readRefServed(c, loc, alloc); rerr == nil {
			return data, nil
		}
	}
	return nil, err
}

// HasBlock reports whether GetBlock would find c (referenced leaves are not read to answer).
func (s *Store) HasBlock(ctx context.Context, c cid.Cid) bool {
	return s.blocks.has(c) || len(s.refsFor(c)) > 0
}

// PutBlock stores a block the caller has verified. It is durable after SyncBlocks.
func (s *Store) PutBlock(c cid.Cid, data []byte) error { return s.blocks.put(c, data) }

// SyncBlocks makes every block put so far durable.
func (s *Store) SyncBlocks() error { return s.blocks.sync() }

// GCResult says what gc reclaimed.
type GCResult struct {
	Removed int   `json:"removed"`
	Bytes   int64 `json:"bytes"`
	Kept    int   `json:"kept"`
}

// GC removes owned blocks that no held file needs, and temporary files left by a crash. It does
// not run (ErrBusy) while an import or a fetch is writing blocks that no event names yet.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	if !s.gcMu.TryLock() {
		return GCResult{}, ErrBusy
	}
	defer s.gcMu.Unlock()
	live := map[string]bool{}
	for _, f := range s.Files() {
		// A complete file of owned blocks must be whole; of any other file (referenced, partial,
		// changed) what is here is kept, around whatever is missing.
		strict := f.State == Complete && f.Path == ""
		if err := s.markLive(ctx, f.Root, live, strict); err != nil {
			return GCResult{}, fmt.Errorf("walking %s: %w (nothing was removed)", f.CID, err)
		}
	}
	var res GCResult
	err := s.blocks.each(func(c cid.Cid) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if live[blockKey(c)] {
			res.Kept++
			return nil
		}
		_, path := s.blocks.path(c)
		if st, err := os.Stat(path); err == nil {
			res.Bytes += st.Size()
		}
		res.Removed++
		return s.blocks.remove(c)
	})
	return res, err
}

// markLive adds c and the blocks under it to live. Strict, a block that cannot be read is an
// error; otherwise it is passed over and its siblings are still visited.
func (s *Store) markLive(ctx context.Context, c cid.Cid, live map[string]bool, strict bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	live[blockKey(c)] = true
	if !mayLink(c) {
		return nil
	}
	data, err := s.blocks.get(c)
	var links []cid.Cid
	if err == nil {
		links, err = Links(c, data) // any DAG: a file, or what a CAR brought in
	}
	if err != nil {
		if strict {
			return err
		}
		return nil
	}
	for _, ch := range links {
		if err := s.markLive(ctx, ch, live, strict); err != nil {
			return err
		}
	}
	return nil
}

// walk visits the DAG of a file of size bytes depth first: fn gets each block's CID, parsed node
// and file offset.
// Leaves of referenced files are not read: only their CIDs and offsets are visited.
func (s *Store) walk(ctx context.Context, root cid.Cid, size uint64, fn func(c cid.Cid, n unixfs.Node, off uint64) error) error {
	var visit func(c cid.Cid, off, size uint64) error
	visit = func(c cid.Cid, off, size uint64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.Prefix().Codec == cid.Raw {
			return fn(c, unixfs.Node{Cid: c, Size: size}, off)
		}
		data, err := s.blocks.get(c)
		if err != nil {
			return err
		}
		n, err := unixfs.ParseNode(c, data)
		if err != nil {
			return err
		}
		if err := fn(c, n, off); err != nil {
			return err
		}
		for _, ch := range n.Children {
			if err := visit(ch.Cid, off+ch.Offset, ch.Size); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(root, 0, size)
}
