package unixfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
)

// GetFunc returns the verified bytes of a block. NewReader calls it from
// several goroutines at once and cancels ctx when it no longer needs the
// block. The reader keeps the returned slice until its bytes are read and
// never modifies it.
type GetFunc func(ctx context.Context, c cid.Cid) ([]byte, error)

const (
	// readAhead is how many leaves a reader fetches ahead of its consumer.
	readAhead = 8
)

var errReaderClosed = errors.New("unixfs: read after close")

// closedChan is a done channel for tasks that are ready when made.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// NewReader returns a reader of the file whose DAG has the given root. It
// walks the DAG depth-first, fetching inner dag-pb nodes as it reaches them
// and up to 8 raw leaves ahead of the consumer on their own goroutines, so a
// slow get overlaps with reading. It checks that every node's size agrees with
// what its parent says, so the bytes it yields add up to the root's size.
// Errors from get or ParseNode are returned by Read, after the bytes that come
// before the failing block. Nothing starts before the first Read; Close stops
// the fetches and waits for them. Read is not safe for concurrent use, but
// Close may be called while a Read is blocked.
func NewReader(ctx context.Context, root cid.Cid, get GetFunc) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	return &reader{
		ctx:    ctx,
		cancel: cancel,
		root:   root,
		get:    get,
		tasks:  make(chan *task, readAhead),
		slots:  make(chan struct{}, readAhead),
	}
}

// task is a run of file bytes in order: a leaf being fetched, or inline data.
type task struct {
	c    cid.Cid
	size uint64
	done chan struct{} // closed when data or err is set
	data []byte
	err  error
	slot bool // holds a read-ahead slot until consumed
}

type reader struct {
	ctx    context.Context
	cancel context.CancelFunc
	root   cid.Cid
	get    GetFunc

	tasks   chan *task    // in file order; closed by the walker
	slots   chan struct{} // read-ahead slots for leaf fetches
	wg      sync.WaitGroup
	walkErr error // set by the walker before it closes tasks

	mu      sync.Mutex // guards started and closed
	started bool
	closed  bool

	cur *task
	off int
	err error
}

var _ io.WriterTo = (*reader)(nil)

func (r *reader) Read(p []byte) (int, error) {
	for {
		if r.cur != nil && r.off < len(r.cur.data) {
			n := copy(p, r.cur.data[r.off:])
			r.off += n
			return n, nil
		}
		if len(p) == 0 && r.err == nil {
			return 0, nil
		}
		if err := r.advance(); err != nil {
			return 0, err
		}
	}
}

// WriteTo writes the file's remaining bytes to w without an extra copy.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.cur != nil && r.off < len(r.cur.data) {
			n, err := w.Write(r.cur.data[r.off:])
			r.off += n
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		if err := r.advance(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
	}
}

// advance moves to the next run of bytes, waiting for it to arrive.
func (r *reader) advance() error {
	r.mu.Lock()
	closed := r.closed
	if !closed && !r.started {
		r.started = true
		r.wg.Add(1)
		go r.walk()
	}
	r.mu.Unlock()
	if closed {
		return errReaderClosed
	}
	if r.err != nil {
		return r.err
	}
	if r.cur != nil {
		r.release(r.cur)
		r.cur = nil
	}
	select {
	case t, ok := <-r.tasks:
		if !ok {
			r.err = r.walkErr
			if r.err == nil {
				r.err = io.EOF
			}
			return r.err
		}
		select {
		case <-t.done:
		case <-r.ctx.Done():
			r.err = r.ctx.Err()
			return r.err
		}
		if t.err != nil {
			r.err = t.err
			return r.err
		}
		r.cur, r.off = t, 0
		return nil
	case <-r.ctx.Done():
		r.err = r.ctx.Err()
		return r.err
	}
}

func (r *reader) release(t *task) {
	if t.slot {
		t.slot = false
		<-r.slots
	}
}

// Close stops the walk and the fetches in flight and waits for them. It may
// be called while a Read is blocked, which then returns an error.
func (r *reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// walk is the goroutine that walks the DAG and queues its runs of bytes.
func (r *reader) walk() {
	defer r.wg.Done()
	if err := r.walkRoot(); err != nil {
		r.walkErr = err
	}
	close(r.tasks)
}

func (r *reader) walkRoot() error {
	if err := CheckCID(r.root); err != nil {
		return err
	}
	n, err := r.fetchNode(r.root)
	if err != nil {
		return err
	}
	return r.visit(n, 0)
}

func (r *reader) fetchNode(c cid.Cid) (Node, error) {
	b, err := r.get(r.ctx, c)
	if err != nil {
		return Node{}, fmt.Errorf("getting block %s: %w", c, err)
	}
	return ParseNode(c, b)
}

func (r *reader) visit(n Node, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("block %s: DAG deeper than %d levels", n.Cid, MaxDepth)
	}
	if len(n.Data) > 0 {
		if err := r.queue(&task{c: n.Cid, data: n.Data, done: closedChan}); err != nil {
			return err
		}
	}
	for _, ch := range n.Children {
		if ch.Cid.Type() == cid.Raw {
			select {
			case r.slots <- struct{}{}:
			case <-r.ctx.Done():
				return r.ctx.Err()
			}
			t := &task{c: ch.Cid, size: ch.Size, done: make(chan struct{}), slot: true}
			r.wg.Add(1)
			go r.fetch(t)
			if err := r.queue(t); err != nil {
				return err
			}
			continue
		}
		cn, err := r.fetchNode(ch.Cid)
		if err != nil {
			return err
		}
		if cn.Size != ch.Size {
			return fmt.Errorf("block %s holds %d file bytes but its parent %s says %d", ch.Cid, cn.Size, n.Cid, ch.Size)
		}
		if err := r.visit(cn, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) queue(t *task) error {
	select {
	case r.tasks <- t:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// fetch gets one raw leaf.
func (r *reader) fetch(t *task) {
	defer r.wg.Done()
	defer close(t.done)
	b, err := r.get(r.ctx, t.c)
	switch {
	case err != nil:
		t.err = fmt.Errorf("getting block %s: %w", t.c, err)
	case uint64(len(b)) != t.size:
		t.err = fmt.Errorf("block %s holds %d bytes but its parent says %d", t.c, len(b), t.size)
	default:
		t.data = b
	}
}
