package eventlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"peer/internal/fsys"
)

// Recovery says what Open had to cut. The zero value means the log was clean.
type Recovery struct {
	TruncatedAt int64  // byte offset where the valid log ends, when a tail was cut
	Dropped     int64  // bytes cut
	Reason      string // "torn record", "checksum mismatch", ...
}

// Cut reports whether Open truncated a torn tail.
func (r Recovery) Cut() bool { return r.Dropped > 0 }

// Options tune a Log. The zero value is the safe default.
type Options struct {
	// NoSync skips fsync (tests and benchmarks that do not measure durability). Default false.
	NoSync bool
}

// Log is an open event log. Its methods are safe for concurrent use.
type Log struct {
	f      *os.File
	noSync bool

	// Test hooks; production uses the file directly.
	writeAt  func(b []byte, off int64) (int, error)
	sync     func() error
	truncate func(size int64) error

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a batch finishes
	end      int64      // offset after the last durable record
	cur      *batch     // records waiting for the next write, or nil
	flushing bool       // a leader is writing and syncing a batch
	closed   bool
	broken   error // set when a failed append could not be undone; appends then fail
	spare    []byte
	flushes  int64 // batches written (each one write and one fsync), for tests and benchmarks
	accepted int64 // records taken into batches, for tests
}

// batch is a group of appends written with one write and made durable with one fsync.
type batch struct {
	buf  []byte
	off  int64 // file offset of buf[0], set when written
	err  error
	done bool
}

// Open opens or creates the log at path, reads it through once verifying every record's length
// and checksum, and positions for append. A bad record at the end (short header, length past EOF,
// bad checksum on the last record, garbage after the last good record that does not parse) is a
// torn tail: Open truncates the file to the last good record, fsyncs, and reports it in Recovery.
// A bad record followed by any well-formed record is mid-log corruption: Open returns a
// *CorruptError (wrapping ErrCorrupt) naming the offset and changes nothing on disk. A wrong file
// header is also ErrCorrupt; an empty file gets its header written. The file is flocked for the
// life of the Log, so a second Open of the same file fails. Open logs nothing: reporting a cut is
// the caller's business.
func Open(path string, opts Options) (*Log, Recovery, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("opening event log: %w", err)
	}
	l := &Log{f: f, noSync: opts.NoSync}
	l.cond = sync.NewCond(&l.mu)
	l.writeAt = f.WriteAt
	l.sync = l.fdatasync
	l.truncate = f.Truncate
	rec, err := l.load(path)
	if err != nil {
		_ = f.Close()
		return nil, Recovery{}, err
	}
	return l, rec, nil
}

// load locks the file, checks the header and every record, cuts a torn tail, and sets l.end.
func (l *Log) load(path string) (Recovery, error) {
	if err := flock(l.f); err != nil {
		return Recovery{}, fmt.Errorf("locking event log %s: %w", path, err)
	}
	fi, err := l.f.Stat()
	if err != nil {
		return Recovery{}, fmt.Errorf("stat event log: %w", err)
	}
	size := fi.Size()

	var rec Recovery
	if size < HeaderSize {
		var head [HeaderSize]byte
		if err := readFull(l.f, head[:size], 0); err != nil {
			return Recovery{}, fmt.Errorf("reading event log header: %w", err)
		}
		if string(head[:size]) != magic[:size] {
			return Recovery{}, &CorruptError{Offset: 0, Reason: "bad file header"}
		}
		// Empty, or the header itself was torn while the file was created.
		if size > 0 {
			rec = Recovery{TruncatedAt: 0, Dropped: size, Reason: "torn header"}
		}
		if err := l.create(path); err != nil {
			return Recovery{}, err
		}
		l.end = HeaderSize
		return rec, nil
	}

	var head [HeaderSize]byte
	if err := readFull(l.f, head[:], 0); err != nil {
		return Recovery{}, fmt.Errorf("reading event log header: %w", err)
	}
	if string(head[:len(magic)-1]) != magic[:len(magic)-1] {
		return Recovery{}, &CorruptError{Offset: 0, Reason: "bad file header"}
	}
	if head[len(magic)-1] != magic[len(magic)-1] {
		return Recovery{}, &CorruptError{Offset: 0, Reason: fmt.Sprintf("unsupported format version %d", head[len(magic)-1])}
	}

	end := int64(HeaderSize)
	err = scanRange(l.f, HeaderSize, size, func(off int64, rec []byte) error {
		end = off + recordHeaderSize + int64(len(rec))
		return nil
	})
	var bad *badRecord
	if errors.As(err, &bad) {
		next, found, ferr := findRecord(l.f, bad.off+1, size)
		if ferr != nil {
			return Recovery{}, fmt.Errorf("reading event log: %w", ferr)
		}
		if found {
			return Recovery{}, &CorruptError{Offset: bad.off,
				Reason: fmt.Sprintf("%s, followed by a well-formed record at offset %d", bad.reason(), next)}
		}
		if err := l.f.Truncate(bad.off); err != nil {
			return Recovery{}, fmt.Errorf("cutting torn tail of event log: %w", err)
		}
		if err := l.syncFile(); err != nil {
			return Recovery{}, fmt.Errorf("syncing event log: %w", err)
		}
		rec = Recovery{TruncatedAt: bad.off, Dropped: size - bad.off, Reason: bad.reason()}
	} else if err != nil {
		return Recovery{}, fmt.Errorf("reading event log: %w", err)
	}
	l.end = end
	return rec, nil
}

// create writes the header into an empty (or torn-header) file and makes it and its directory
// entry durable.
func (l *Log) create(path string) error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("creating event log: %w", err)
	}
	if _, err := l.f.WriteAt([]byte(magic), 0); err != nil {
		return fmt.Errorf("writing event log header: %w", err)
	}
	if err := l.syncFile(); err != nil {
		return fmt.Errorf("syncing event log: %w", err)
	}
	if l.noSync {
		return nil
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("syncing event log directory: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("syncing event log directory: %w", err)
	}
	return nil
}

// Append writes records and returns when they are durable, with the offset of the first. It is
// safe for concurrent callers: while one fsync runs, further appends queue, and the next write and
// fsync cover them all (group commit). A record larger than MaxRecordSize is an error and nothing
// is written. If the write or fsync fails, the file is truncated back to the last durable offset,
// the error is returned, and later appends may be retried. Append of no records returns End().
func (l *Log) Append(records ...[]byte) (int64, error) {
	size := 0
	for i, r := range records {
		if len(r) > MaxRecordSize {
			return 0, fmt.Errorf("appending record %d: %d bytes exceeds maximum %d", i, len(r), MaxRecordSize)
		}
		size += recordHeaderSize + len(r)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.broken != nil {
		return 0, fmt.Errorf("event log unusable after failed append: %w", l.broken)
	}
	if len(records) == 0 {
		return l.end, nil
	}
	if l.cur == nil {
		l.cur = &batch{buf: l.spare[:0]}
		l.spare = nil
	}
	b := l.cur
	rel := int64(len(b.buf))
	b.buf = slices.Grow(b.buf, size)
	for _, r := range records {
		b.buf = AppendRecord(b.buf, r)
	}
	l.accepted += int64(len(records))

	// Wait until a leader has written our batch, or become the leader: a batch is pending
	// (not yet taken) exactly while no flush runs, so if none runs, l.cur is ours.
	for !b.done {
		if l.flushing {
			l.cond.Wait()
			continue
		}
		l.flush()
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.off + rel, nil
}

// flush writes and syncs l.cur. It is called with l.mu held and releases it during the I/O.
func (l *Log) flush() {
	b := l.cur
	l.cur = nil
	if l.broken != nil {
		// An earlier failure left bytes we could not cut; writing after them is not safe.
		b.err = fmt.Errorf("event log unusable after failed append: %w", l.broken)
		b.done = true
		l.cond.Broadcast()
		return
	}
	l.flushing = true
	off := l.end
	l.mu.Unlock()

	err := l.writeSync(b.buf, off)

	l.mu.Lock()
	l.flushing = false
	l.flushes++
	if err == nil {
		l.end = off + int64(len(b.buf))
		b.off = off
	} else {
		b.err = err
		if terr := l.undo(off); terr != nil {
			l.broken = terr
			b.err = fmt.Errorf("%w; undoing it failed too: %v", err, terr)
		}
	}
	b.done = true
	if cap(b.buf) <= readBufSize {
		l.spare = b.buf[:0]
	}
	l.cond.Broadcast()
}

func (l *Log) writeSync(buf []byte, off int64) error {
	if _, err := l.writeAt(buf, off); err != nil {
		return fmt.Errorf("writing event log: %w", err)
	}
	if l.noSync {
		return nil
	}
	if err := l.sync(); err != nil {
		return fmt.Errorf("syncing event log: %w", err)
	}
	return nil
}

// undo cuts whatever a failed append may have left past the durable end.
func (l *Log) undo(end int64) error {
	if err := l.truncate(end); err != nil {
		return fmt.Errorf("truncating event log to %d: %w", end, err)
	}
	if err := l.syncFile(); err != nil {
		return fmt.Errorf("syncing event log: %w", err)
	}
	return nil
}

// Scan calls fn for each record from byte offset from (HeaderSize for the start, or an offset
// returned by Append or Scan) up to End() as of the call, verifying each. rec is valid only during
// the call. fn runs on the caller's goroutine and may call Append or End; an error from fn stops
// the scan and is returned as it is. A damaged record gives a *CorruptError. Scan may run
// concurrently with Append.
func (l *Log) Scan(from int64, fn func(off int64, rec []byte) error) error {
	l.mu.Lock()
	end, closed := l.end, l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if from < HeaderSize || from > end {
		return fmt.Errorf("scanning event log: offset %d outside [%d, %d]", from, HeaderSize, end)
	}
	err := scanRange(l.f, from, end, fn)
	var bad *badRecord
	switch {
	case errors.As(err, &bad):
		return &CorruptError{Offset: bad.off, Reason: bad.reason()}
	case errors.Is(err, os.ErrClosed):
		return ErrClosed
	}
	return err
}

// End returns the offset after the last durable record.
func (l *Log) End() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end
}

// Close waits for queued appends to finish, then closes the file. Appends after Close fail with
// ErrClosed. Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for l.flushing || l.cur != nil {
		l.cond.Wait()
	}
	l.mu.Unlock()
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("closing event log: %w", err)
	}
	return nil
}

func (l *Log) syncFile() error {
	if l.noSync {
		return nil
	}
	return l.fdatasync()
}

// fdatasync flushes the file's data and the metadata needed to read it back (its size).
func (l *Log) fdatasync() error { return fsys.Datasync(l.f) }

// flock takes an exclusive, non-blocking lock on the whole file.
func flock(f *os.File) error {
	err := fsys.Lock(f)
	if errors.Is(err, fsys.ErrLocked) {
		return errors.New("already open by another writer")
	}
	return err
}

var _ io.Closer = (*Log)(nil)
