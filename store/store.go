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

// Store is an open repo. One process holds a repo at a time (an exclusive lock taken by Open).
// It composes four parts, each with one job and its own locks, and its methods are safe for
// concurrent use:
//
//   - Blocks, the block repo (blocks.go, pack.go): the blocks the node owns, a file each or,
//     the small blocks of a folder import, packed together;
//   - Journal, the event log and the projections folded from it (this file, index.go,
//     catalog.go, transfers.go): the index of held files, the network catalog, the transfer list;
//   - Refs, files referenced in place and what is served (refs.go, sharedir.go, verify.go,
//     served.go): where referenced leaves lie, which blocks are offered, what was verified;
//   - Downloads, the fetches in progress (download.go, partfile.go).
//
// What needs more than one part (imports, GC, serving a block, starting a download) is a method
// of Store. Lock order: Journal before Refs before Downloads; Blocks' locks are taken last, or
// (its gc hold) first of all.
type Store struct {
	dir       string
	lock      *repoLock
	blocks    *Blocks
	journal   *Journal
	refs      *Refs
	downloads *Downloads

	closeOnce sync.Once
	closeErr  error
}

// Journal is the event log and its projections: the index of held files, the network catalog
// and the transfer list, all rebuilt by replaying the log (or loaded from a snapshot and the
// events after it) and kept current as events are recorded. Derived state elsewhere (Refs)
// follows the events through observers, called as each event is applied.
type Journal struct {
	dir string
	log *eventlog.Log
	rec eventlog.Recovery
	// observers are told of each event as it is applied, with mu held: they must not call back
	// into the Journal. Set before the first Record.
	observers []func(Event)

	// recMu orders Record calls (Seq, append, apply) and is taken before mu. mu guards the index
	// and what goes with it; it is not held during the log's fsync, so readers (Files, block
	// lookups for serving) never wait for one.
	recMu   sync.Mutex
	mu      sync.Mutex // guards ix, snapSeq, marks, subs, closed
	ix      *index
	snapSeq uint64 // Seq of the last snapshot
	marks   []mark // ascending by seq, the first at the log's start
	subs    map[chan Event]chan struct{}
	now     func() time.Time
	closed  bool
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
	j, err := openJournal(dir)
	if err != nil {
		lk.release()
		return nil, err
	}
	s := &Store{
		dir:       dir,
		lock:      lk,
		blocks:    newBlocks(filepath.Join(dir, blocksDir)),
		journal:   j,
		downloads: newDownloads(),
	}
	s.refs = newRefs(s.blocks, j, s.downloads)
	j.observers = append(j.observers, s.refs.apply)
	return s, nil
}

// Blocks is the block repo.
func (s *Store) Blocks() *Blocks { return s.blocks }

// Journal is the event log and the index, catalog and transfer list projected from it.
func (s *Store) Journal() *Journal { return s.journal }

// Refs is the files referenced in place and what the node serves.
func (s *Store) Refs() *Refs { return s.refs }

// Record appends events to the log as one durable group (see Journal.Record).
func (s *Store) Record(evs ...Event) error { return s.journal.Record(evs...) }

// Subscribe returns a channel of events recorded from now on (see Journal.Subscribe).
func (s *Store) Subscribe() (<-chan Event, func()) { return s.journal.Subscribe() }

// Follow calls fn for every event from from on, without missing one (see Journal.Follow).
func (s *Store) Follow(ctx context.Context, from uint64, fn func(Event) error) error {
	return s.journal.Follow(ctx, from, fn)
}

// Events calls fn for every event with Seq >= from, in order (see Journal.Events).
func (s *Store) Events(from uint64, fn func(Event) error) error { return s.journal.Events(from, fn) }

// Recovery says what Open had to cut from the log's tail (zero when nothing).
func (s *Store) Recovery() eventlog.Recovery { return s.journal.Recovery() }

// File returns one held file.
func (s *Store) File(root cid.Cid) (File, bool) { return s.journal.File(root) }

// FilesAt lists the files held at time t, by replaying the log up to t.
func (s *Store) FilesAt(t time.Time) ([]File, error) { return s.journal.FilesAt(t) }

// LastSeen says when peer last announced root, as the catalog knows it.
func (s *Store) LastSeen(root, peer string) (time.Time, bool) { return s.journal.LastSeen(root, peer) }

// Search lists what the network announced, matching term, seen within ttl.
func (s *Store) Search(term string, ttl time.Duration) []Offer { return s.journal.Search(term, ttl) }

// Replayed rebuilds the index from the log alone and reports whether it equals the live one
// (see Journal.Replayed).
func (s *Store) Replayed() ([]File, bool, error) { return s.journal.Replayed() }

// Transfers is the daemon's transfer list, as the log tells it.
func (s *Store) Transfers() *Transfers { return s.journal.Transfers() }

// Intact reports whether f's bytes are where the index says (see Refs.Intact).
func (s *Store) Intact(f File) bool { return s.refs.Intact(f) }

// CheckFiles records as changed the referenced files that are gone or changed, and returns how
// many it found (see Refs.CheckFiles).
func (s *Store) CheckFiles() int { return s.refs.CheckFiles() }

// Files lists the files held now; a partial file being fetched has its bytes so far.
func (s *Store) Files() []File {
	files := s.journal.Files()
	for i, f := range files {
		if f.State != Partial {
			continue
		}
		if d := s.downloads.get(f.CID); d != nil {
			files[i].Have = d.Have()
			if size := d.Size(); size > 0 {
				files[i].Size = size
			}
		}
	}
	return files
}

// Close writes a snapshot if many events followed the last one, closes the log and releases the
// lock. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = errors.Join(s.journal.close(), s.lock.release()) })
	return s.closeErr
}

// Dir is the repo directory.
func (s *Store) Dir() string { return s.dir }

// openJournal opens the event log of the repo at dir and projects it: from the snapshot and the
// events after it, or, when the snapshot does not line up with the log, from the whole log.
func openJournal(dir string) (*Journal, error) {
	j := &Journal{dir: dir, subs: map[chan Event]chan struct{}{}, now: time.Now}
	if err := j.open(); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *Journal) open() error {
	l, rec, err := eventlog.Open(filepath.Join(j.dir, logFile), eventlog.Options{})
	if err != nil {
		return fmt.Errorf("opening event log: %w", err)
	}
	j.log, j.rec = l, rec
	if rec.Cut() {
		logger().Warn("event log tail cut", "at", rec.TruncatedAt, "dropped", rec.Dropped, "reason", rec.Reason)
	}
	ix, from, marks := j.loadSnapshot()
	// snapSeq counts from the snapshot actually used, so the events replayed after it count
	// towards the next one; with no usable snapshot every event does.
	j.snapSeq = ix.Seq
	if err := replay(l, from, ix, &marks, func(Event) bool { return true }); err != nil {
		// A snapshot that does not line up with the log is only a cache: rebuild from scratch.
		logger().Warn("snapshot does not match the event log; replaying it all", "err", err)
		ix = newIndex()
		j.snapSeq = 0
		marks = []mark{{Seq: 1, Off: eventlog.HeaderSize}}
		if err := replay(l, eventlog.HeaderSize, ix, &marks, func(Event) bool { return true }); err != nil {
			l.Close()
			return err
		}
	}
	j.ix, j.marks = ix, marks
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
func (j *Journal) loadSnapshot() (*index, int64, []mark) {
	start := []mark{{Seq: 1, Off: eventlog.HeaderSize}}
	b, err := os.ReadFile(filepath.Join(j.dir, snapshotFile))
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
	case sn.Offset < eventlog.HeaderSize || sn.Offset > j.log.End():
		err = fmt.Errorf("offset %d outside the log [%d, %d]", sn.Offset, eventlog.HeaderSize, j.log.End())
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

// writeSnapshot saves the index so the next Open replays only what follows. Called with j.recMu
// held, so no event is appended meanwhile, and without j.mu.
func (j *Journal) writeSnapshot() error {
	j.mu.Lock()
	b, err := json.Marshal(snapshot{Version: snapshotVersion, Offset: j.log.End(), Index: j.ix, Marks: j.marks})
	seq := j.ix.Seq
	j.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(j.dir, snapshotFile), b, 0o600); err != nil {
		return fmt.Errorf("writing snapshot: %w", err)
	}
	j.mu.Lock()
	j.snapSeq = seq
	j.mu.Unlock()
	return nil
}

// close writes a snapshot if many events followed the last one, ends every subscription and
// closes the log. It is idempotent.
func (j *Journal) close() error {
	j.recMu.Lock() // waits for a Record in progress
	defer j.recMu.Unlock()
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	for ch := range j.subs {
		close(ch)
	}
	j.subs = nil
	due := j.ix.Seq-j.snapSeq >= 64
	j.mu.Unlock()
	var errs []error
	if due {
		errs = append(errs, j.writeSnapshot())
	}
	errs = append(errs, j.log.Close())
	return errors.Join(errs...)
}

// Recovery says what opening the log had to cut from its tail (zero when nothing).
func (j *Journal) Recovery() eventlog.Recovery { return j.rec }

// Record appends events to the log as one durable group (one fsync) and applies them to the index
// and the observers.
// Seq and Time are filled in. Callers with many events (announcements) should pass them together.
func (j *Journal) Record(evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	j.recMu.Lock()
	defer j.recMu.Unlock()
	j.mu.Lock()
	closed, last := j.closed, j.ix.Seq // only Record changes ix.Seq, and recMu is held
	j.mu.Unlock()
	if closed {
		return eventlog.ErrClosed
	}
	now := j.now().UTC()
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
	first, err := j.log.Append(recs...)
	if err != nil {
		return fmt.Errorf("recording %s: %w", evs[0].Type, err)
	}
	j.mu.Lock()
	addMark(&j.marks, evs[0].Seq, first)
	for _, e := range evs {
		j.ix.apply(e)
		for _, fn := range j.observers {
			fn(e)
		}
		for ch, lag := range j.subs {
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
	due := j.ix.Seq-j.snapSeq >= snapshotEvery
	j.mu.Unlock()
	if due {
		if err := j.writeSnapshot(); err != nil {
			logger().Warn("snapshot failed", "err", err)
		}
	}
	return nil
}

// Subscribe returns a channel of events recorded from now on, and a function that ends the
// subscription. A subscriber that falls more than 1024 events behind misses events; use Follow
// for a stream that never misses one.
func (j *Journal) Subscribe() (<-chan Event, func()) {
	ch, _, stop := j.subscribe()
	return ch, stop
}

// subscribe is Subscribe that also returns the subscription's lag signal: it receives (once
// per burst, capacity 1) whenever an event was dropped because ch was full. Every dropped event
// is in the log before the signal is sent.
func (j *Journal) subscribe() (<-chan Event, <-chan struct{}, func()) {
	ch, lag := make(chan Event, 1024), make(chan struct{}, 1)
	j.mu.Lock()
	if j.closed {
		close(ch)
		j.mu.Unlock()
		return ch, lag, func() {}
	}
	j.subs[ch] = lag
	j.mu.Unlock()
	var once sync.Once
	return ch, lag, func() {
		once.Do(func() {
			j.mu.Lock()
			if _, ok := j.subs[ch]; ok {
				delete(j.subs, ch)
				close(ch)
			}
			j.mu.Unlock()
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
func (j *Journal) Follow(ctx context.Context, from uint64, fn func(Event) error) error {
	// Subscribe before reading the log, so no event falls between the two.
	ch, lag, stop := j.subscribe()
	defer stop()
	next := from
	catchUp := func() error {
		err := j.Events(next, func(e Event) error {
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
func (j *Journal) Events(from uint64, fn func(Event) error) error {
	j.mu.Lock()
	i := max(sort.Search(len(j.marks), func(i int) bool { return j.marks[i].Seq > from })-1, 0)
	m := j.marks[i]
	j.mu.Unlock()
	first := true
	err := j.log.Scan(m.Off, func(off int64, rec []byte) error {
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
		j.mu.Lock()
		if i < len(j.marks) && j.marks[i] == m { // not already dropped by a concurrent call
			j.marks = slices.Delete(j.marks, i, len(j.marks))
		}
		j.mu.Unlock()
		return j.Events(from, fn)
	}
	return err
}

var errBadMark = errors.New("no event where a mark says")

// Files lists the files the index holds, as the log tells them: a partial file's Have is what it
// had when its fetch last stopped (Store.Files gives a fetch in progress's bytes so far).
func (j *Journal) Files() []File {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.ix.files()
}

// fileByCID returns the index's entry for root, a CID string.
func (j *Journal) fileByCID(root string) (File, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f, ok := j.ix.Files[root]
	if !ok {
		return File{}, false
	}
	return *f, true
}

// File returns one held file.
func (j *Journal) File(root cid.Cid) (File, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f, ok := j.ix.Files[root.String()]
	if !ok {
		return File{}, false
	}
	c := *f
	c.Root = root
	return c, true
}

// FilesAt lists the files held at time t, by replaying the log up to t.
func (j *Journal) FilesAt(t time.Time) ([]File, error) {
	ix := newIndex()
	err := replay(j.log, eventlog.HeaderSize, ix, nil, func(e Event) bool { return !e.Time.After(t) })
	if err != nil && !errors.Is(err, errStopReplay) {
		return nil, err
	}
	return ix.files(), nil
}

// LastSeen says when peer last announced root, as the catalog knows it.
func (j *Journal) LastSeen(root, peer string) (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	o := j.ix.Catalog[root]
	if o == nil {
		return time.Time{}, false
	}
	t, ok := o.Providers[peer]
	return t, ok
}

// Search lists what the network announced, matching term, seen within ttl.
func (j *Journal) Search(term string, ttl time.Duration) []Offer {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.ix.search(term, j.now().Add(-ttl))
}

// Replayed rebuilds the index from the log alone, up to the live index's last event, and reports
// whether it equals the live one: how tests prove the projection is a pure function of the log.
// Events recorded meanwhile are left out of both sides.
func (j *Journal) Replayed() (files []File, same bool, err error) {
	j.mu.Lock()
	live, err := json.Marshal(j.ix)
	seq := j.ix.Seq
	j.mu.Unlock()
	if err != nil {
		return nil, false, err
	}
	ix := newIndex()
	err = replay(j.log, eventlog.HeaderSize, ix, nil, func(e Event) bool { return e.Seq <= seq })
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
	if !s.blocks.gc.TryLock() {
		return fmt.Errorf("%w (%d blocks it wrote are left: run `peer gc` once the other import or fetch has ended)", cause, len(written))
	}
	defer s.blocks.gc.Unlock()
	live := map[string]bool{}
	for _, f := range s.Files() {
		_ = s.blocks.markLive(context.Background(), f.Root, live, false)
	}
	var errs []error
	for _, c := range written {
		if !live[blockKey(c)] {
			errs = append(errs, s.blocks.remove(c))
		}
	}
	errs = append(errs, s.blocks.compactPacks())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w (removing the blocks it wrote also failed: run `peer gc`: %v)", cause, err)
	}
	return cause
}

// add is Add without the clean-up: it also returns the blocks it wrote (that were not here).
func (s *Store) add(ctx context.Context, r io.Reader, name string, opts AddOptions) (_ File, written []cid.Cid, _ error) {
	s.blocks.gc.RLock()
	defer s.blocks.gc.RUnlock()
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
	s.blocks.gc.RLock()
	defer s.blocks.gc.RUnlock()
	abs, err := filepath.Abs(path)
	if err != nil {
		return File{}, nil, err
	}
	// A file of a folder shared in place is the version hashed while its change time is older
	// than this.
	began := s.journal.now().UnixNano()
	topts := unixfs.TreeOptions{
		ImportOptions: unixfs.ImportOptions{ChunkSize: opts.ChunkSize, Progress: opts.Progress},
		Hidden:        opts.Hidden,
		FileDone:      opts.FileDone,
	}
	var mu sync.Mutex // the importer writes several small files at once
	// Small blocks go into one pack of this import's own, made durable by one sync (pack.go).
	pack := s.blocks.newPackWriter()
	defer pack.close()
	res, err := unixfs.ImportTree(ctx, path, topts, func(b unixfs.Block) error {
		if b.Leaf && opts.Reference {
			return nil
		}
		created, err := pack.put(b.Cid, b.Data)
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
	if err := pack.seal(); err != nil {
		return File{}, written, err
	}
	pack.close()
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
	if s.downloads.get(root.String()) != nil {
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
	for _, loc := range s.refs.refsFor(c) {
		data, rerr := readRef(c, loc)
		if rerr == nil {
			return data, nil
		}
		s.refs.refFailed(loc, rerr)
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
	if !s.refs.servable(c) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if d, ok := identityData(c); ok { // its bytes are in its CID: nothing to read or verify
		return append(alloc(len(d))[:0], d...), nil
	}
	data, st, err := s.blocks.readStat(c, alloc)
	if err == nil {
		return s.refs.serveOwned(c, data, st)
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	for _, loc := range s.refs.refsFor(c) {
		if data, rerr := s.refs.readRefServed(c, loc, alloc); rerr == nil {
			return data, nil
		}
	}
	return nil, err
}

// HasBlock reports whether GetBlock would find c (referenced leaves are not read to answer).
func (s *Store) HasBlock(ctx context.Context, c cid.Cid) bool {
	return s.blocks.has(c) || len(s.refs.refsFor(c)) > 0
}

// PutBlock stores a block the caller has verified. It is durable after SyncBlocks.
func (s *Store) PutBlock(c cid.Cid, data []byte) error { return s.blocks.Put(c, data) }

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
	if !s.blocks.gc.TryLock() {
		return GCResult{}, ErrBusy
	}
	defer s.blocks.gc.Unlock()
	live := map[string]bool{}
	for _, f := range s.Files() {
		// A complete file of owned blocks must be whole; of any other file (referenced, partial,
		// changed) what is here is kept, around whatever is missing.
		strict := f.State == Complete && f.Path == ""
		if err := s.blocks.markLive(ctx, f.Root, live, strict); err != nil {
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
		res.Bytes += s.blocks.storedSize(c)
		res.Removed++
		return s.blocks.remove(c)
	})
	if err == nil {
		err = s.blocks.compactPacks()
	}
	return res, err
}

// markLive adds c and the blocks under it to live. Strict, a block that cannot be read is an
// error; otherwise it is passed over and its siblings are still visited.
func (b *Blocks) markLive(ctx context.Context, c cid.Cid, live map[string]bool, strict bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	live[blockKey(c)] = true
	if !mayLink(c) {
		return nil
	}
	data, err := b.get(c)
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
		if err := b.markLive(ctx, ch, live, strict); err != nil {
			return err
		}
	}
	return nil
}

// walk visits the DAG of a file of size bytes depth first: fn gets each block's CID, parsed node
// and file offset.
// Leaves of referenced files are not read: only their CIDs and offsets are visited.
func (b *Blocks) walk(ctx context.Context, root cid.Cid, size uint64, fn func(c cid.Cid, n unixfs.Node, off uint64) error) error {
	var visit func(c cid.Cid, off, size uint64) error
	visit = func(c cid.Cid, off, size uint64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.Prefix().Codec == cid.Raw {
			return fn(c, unixfs.Node{Cid: c, Size: size}, off)
		}
		data, err := b.get(c)
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
