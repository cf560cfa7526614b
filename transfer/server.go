package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peer/transfer/wire"
)

// writeTimeout scales a write deadline with the frame size: a base for the
// round trip plus the time at a slow but acceptable 256 KiB/s.
func writeTimeout(n int) time.Duration {
	return 10*time.Second + time.Duration(n)*time.Second/(256<<10)
}

// errQueueFull resets a stream whose client queued more than allowed.
var errQueueFull = fmt.Errorf("%w: too many CIDs queued", wire.ErrProtocol)

// handleStream is the thin stream handler: limits, recover, log, metrics,
// Reset on error and Close on success. The work is in serve.
func (t *Transfer) handleStream(s network.Stream) {
	p := s.Conn().RemotePeer()
	if !t.acquireStream(p) {
		t.served.rejected.Add(1)
		// Debug: a peer can open streams as fast as it likes.
		t.log.Debug("rejecting stream", "peer", p.ShortString(), "reason", "too many streams or closed", "max", t.cfg.maxStreamsPerPeer)
		_ = s.Reset()
		return
	}
	defer t.releaseStream(p, s)
	t.served.streams.Add(1)
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("panic serving stream", "peer", p.ShortString(), "panic", r)
			_ = s.Reset()
		}
	}()
	if err := t.serve(t.ctx, s); err != nil {
		if errors.Is(err, wire.ErrProtocol) {
			t.misbehaved(p, err)
		} else {
			t.log.Debug("stream ended", "peer", p.ShortString(), "err", err)
		}
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// Serving is one peer fetching from this node's server: its open streams, the block bytes sent
// to it since its first open stream, and when that was.
type Serving struct {
	Streams int
	Sent    int64
	Since   time.Time
	// Wants is the first CID each open stream asked for, in the order the streams opened (none
	// for a stream that has asked nothing yet). A fetch asks for its root first, unless it
	// holds the root already: this is what names the file a peer fetches, at no cost per block.
	Wants []cid.Cid
}

// sentTo counts what was sent to one peer while it has streams open.
type sentTo struct {
	bytes atomic.Int64
	since time.Time
	first []streamWant // guarded by Transfer.mu
}

// streamWant is the first CID an open stream asked for.
type streamWant struct {
	s network.Stream
	c cid.Cid
}

// Serving returns the peers that have transfer streams open to this node's server: who is
// fetching from it now.
func (t *Transfer) Serving() map[peer.ID]Serving {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[peer.ID]Serving, len(t.streams))
	for p, n := range t.streams {
		s := Serving{Streams: n}
		if st := t.sending[p]; st != nil {
			s.Sent, s.Since = st.bytes.Load(), st.since
			for _, w := range st.first {
				s.Wants = append(s.Wants, w.c)
			}
		}
		out[p] = s
	}
	return out
}

func (t *Transfer) acquireStream(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.streams[p] >= t.cfg.maxStreamsPerPeer {
		return false
	}
	t.streams[p]++
	if t.sending[p] == nil {
		t.sending[p] = &sentTo{since: time.Now()}
	}
	t.wg.Add(1)
	return true
}

func (t *Transfer) releaseStream(p peer.ID, s network.Stream) {
	t.mu.Lock()
	if t.streams[p]--; t.streams[p] <= 0 {
		delete(t.streams, p)
		delete(t.sending, p)
	} else if st := t.sending[p]; st != nil {
		st.first = slices.DeleteFunc(st.first, func(w streamWant) bool { return w.s == s })
	}
	t.mu.Unlock()
	t.wg.Done()
}

// firstWant records the first CID stream s of peer p asked for.
func (t *Transfer) firstWant(p peer.ID, s network.Stream, c cid.Cid) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.sending[p]; st != nil {
		st.first = append(st.first, streamWant{s: s, c: c})
	}
}

// sentCounter is what counts the bytes sent to p (which has a stream open).
func (t *Transfer) sentCounter(p peer.ID) *atomic.Int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.sending[p]; st != nil {
		return &st.bytes
	}
	return new(atomic.Int64)
}

// serveQueue holds the CIDs a client wants, in order, shared by the reading
// and the writing half of one stream. A CID is queued at most once: wanting
// one that is still queued changes nothing (or revives it if it was
// canceled), so a request cannot multiply what it costs to answer.
type serveQueue struct {
	mu        sync.Mutex
	wake      chan struct{} // capacity 1: something changed
	cids      []cid.Cid
	head      int
	queued    map[cid.Cid]bool // the CIDs in cids[head:]; true: canceled, to skip
	ncanceled int              // entries in queued that are true
	max       int
	err       error // reader's end: io.EOF or the failure
}

func (q *serveQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *serveQueue) push(cids []cid.Cid) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head > 0 && q.head >= len(q.cids)/2 {
		n := copy(q.cids, q.cids[q.head:])
		clear(q.cids[n:])
		q.cids, q.head = q.cids[:n], 0
	}
	defer q.signal()
	for _, c := range cids {
		canceled, ok := q.queued[c]
		switch {
		case canceled:
			q.queued[c] = false
			q.ncanceled--
		case !ok:
			// Canceled entries wait in the queue until skipped; they do not
			// count against the cap unless they pile up past twice the cap.
			// Past the cap the stream ends, so a partial push is never seen.
			if entries := len(q.cids) - q.head + 1; entries-q.ncanceled > q.max || entries > 2*q.max {
				return fmt.Errorf("%w (max %d)", errQueueFull, q.max)
			}
			q.cids = append(q.cids, c)
			q.queued[c] = false
		}
	}
	return nil
}

func (q *serveQueue) cancel(cids []cid.Cid) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range cids {
		if canceled, ok := q.queued[c]; ok && !canceled {
			q.queued[c] = true
			q.ncanceled++
		}
	}
}

func (q *serveQueue) finish(err error) {
	q.mu.Lock()
	q.err = err
	q.mu.Unlock()
	q.signal()
}

// next returns the next wanted CID, ok=false when there is none right now,
// and the reader's end once the queue is drained.
func (q *serveQueue) next() (c cid.Cid, ok bool, end error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.cids) {
		c := q.cids[q.head]
		q.cids[q.head] = cid.Undef
		q.head++
		canceled := q.queued[c]
		delete(q.queued, c)
		if canceled {
			q.ncanceled--
			continue
		}
		return c, true, nil
	}
	return cid.Undef, false, q.err
}

// serve answers the Want frames of one stream in order until the client
// closes its side (nil) or something fails (the error). A request that
// breaks the protocol ends the stream at once, whatever is still queued.
func (t *Transfer) serve(ctx context.Context, s network.Stream) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()

	q := &serveQueue{
		wake:   make(chan struct{}, 1),
		queued: make(map[cid.Cid]bool),
		max:    t.cfg.maxQueuedPerStream,
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		err := t.readWants(s, q)
		q.finish(err)
		if !errors.Is(err, io.EOF) {
			cancel(err) // resets the stream and stops the writer
		}
	}()
	defer func() {
		if err != nil {
			_ = s.Reset() // unblocks the reader
		}
		<-readDone
		// The writer fails in many ways once the reader has reset the stream;
		// the reader's reason is the one that says who broke what.
		if cause := context.Cause(ctx); err != nil && cause != nil && ctx.Err() != nil {
			err = cause
		}
	}()

	// A reader goroutine reads blocks from the store ahead of the writer, so
	// a store that hashes or touches disk overlaps with the network.
	ready := make(chan served, serveLookahead+1)
	fl := &streamFlow{s: s, wrote: make(chan struct{}, 1)}
	t.mem.track(fl)
	defer t.mem.untrack(fl)
	readAhead := make(chan struct{})
	raCtx, raCancel := context.WithCancel(ctx) // not ctx: its end resets the stream
	go func() {
		defer close(readAhead)
		t.readBlocks(raCtx, s, q, ready, fl)
	}()
	var holding served // a block taken from ready and not yet written out
	defer func() {
		raCancel()
		<-readAhead
		t.drop(s, holding)
		for {
			select {
			case it := <-ready:
				t.drop(s, it)
			default:
				return
			}
		}
	}()

	sent := t.sentCounter(s.Conn().RemotePeer())
	bw := bufio.NewWriterSize(s, 32<<10)
	var ctl []byte
	for {
		var it served
		select {
		case it = <-ready:
		default:
			if bw.Buffered() > 0 {
				_ = s.SetWriteDeadline(time.Now().Add(writeTimeout(bw.Buffered())))
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("writing: %w", err)
				}
			}
			select {
			case it = <-ready:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		holding = it
		if it.err != nil {
			if errors.Is(it.err, io.EOF) {
				_ = s.SetWriteDeadline(time.Now().Add(writeTimeout(bw.Buffered())))
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("writing: %w", err)
				}
				return nil
			}
			return it.err
		}
		size := len(it.data) + 64
		if it.data == nil {
			ctl, _ = wire.AppendControl(ctl[:0], &wire.Message{Type: wire.TypeDontHave, CID: it.c})
			size = len(ctl)
		}
		if t.limiter != nil {
			if err := t.limiter.WaitN(ctx, size); err != nil {
				return fmt.Errorf("rate limit: %w", err)
			}
		}
		_ = s.SetWriteDeadline(time.Now().Add(writeTimeout(size + bw.Buffered())))
		var err error
		if it.data == nil {
			_, err = bw.Write(ctl)
			t.served.dontHaves.Add(1)
		} else {
			fl.writing(time.Now())
			err = wire.WriteBlock(bw, it.c, it.data)
			fl.writing(time.Time{})
			t.served.blocks.Add(1)
			t.served.bytes.Add(int64(len(it.data)))
			sent.Add(int64(len(it.data)))
			t.drop(s, it) // bw copied it or wrote it through
			fl.wroteOne()
		}
		holding = served{}
		if err != nil {
			return fmt.Errorf("writing %s: %w", shortCID(it.c), err)
		}
		// Serving is progress too: a client waiting on a long queue is not idle.
		_ = s.SetReadDeadline(time.Now().Add(t.cfg.idleTimeout))
	}
}

// serveLookahead is how many blocks a stream may read from the store ahead of
// the one being written.
const serveLookahead = 2

// served is a block read for the writer; data nil means DontHave, err ends
// the stream (io.EOF: the client closed its side and all is answered).
type served struct {
	c    cid.Cid
	data []byte
	held int64 // bytes of the serving budget it holds
	err  error
}

// streamFlow is what the writer of one stream tells its reader: a stream
// reads ahead only while it drains. The reader may read a block when none is
// waiting to be written out, or, up to serveLookahead more, when a block has
// been written out since it last read ahead; so a client that never reads
// holds one block, not four.
type streamFlow struct {
	mu          sync.Mutex
	outstanding int   // blocks read and not yet written out
	written     int64 // blocks written out
	aheadAt     int64 // written when the reader last read ahead
	wrote       chan struct{}
	s           network.Stream
	since       time.Time // when the block being written began, zero between blocks
}

// writing records when the writer began a block (zero: it is done with it).
func (fl *streamFlow) writing(at time.Time) {
	fl.mu.Lock()
	fl.since = at
	fl.mu.Unlock()
}

// stuckSince is when the write in progress began; zero if none.
func (fl *streamFlow) stuckSince() time.Time {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.since
}

// waitTurn waits until the reader may hold one more block; false once ctx is done.
func (fl *streamFlow) waitTurn(ctx context.Context) bool {
	for {
		fl.mu.Lock()
		ok := fl.outstanding == 0 || fl.outstanding <= serveLookahead && fl.written > fl.aheadAt
		fl.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-fl.wrote:
		case <-ctx.Done():
			return false
		}
	}
}

// readOne counts a block read.
func (fl *streamFlow) readOne() {
	fl.mu.Lock()
	if fl.outstanding > 0 {
		fl.aheadAt = fl.written
	}
	fl.outstanding++
	fl.mu.Unlock()
}

// wroteOne counts a block written out.
func (fl *streamFlow) wroteOne() {
	fl.mu.Lock()
	fl.outstanding--
	fl.written++
	fl.mu.Unlock()
	select {
	case fl.wrote <- struct{}{}:
	default:
	}
}

// errNoMemory ends a stream that waited too long for serving memory; the
// client is not at fault (others are holding it), so it is not reported.
var errNoMemory = errors.New("no serving memory free")

// readBlocks feeds ready with the answers to the queued CIDs, in order,
// until the queue ends or ctx is done.
func (t *Transfer) readBlocks(ctx context.Context, s network.Stream, q *serveQueue, ready chan<- served, fl *streamFlow) {
	for {
		if !fl.waitTurn(ctx) {
			return
		}
		c, ok, end := q.next()
		var it served
		switch {
		case ok:
			it = t.readServed(ctx, s, c)
			if it.data != nil {
				fl.readOne()
			}
		case end != nil:
			it = served{err: end}
		default:
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case ready <- it:
		case <-ctx.Done():
			t.drop(s, it)
			return
		}
		if it.err != nil {
			return
		}
	}
}

// readServed reserves serving memory for one block, waiting for it as long as
// a write may take, then reads the block and keeps only what it takes.
func (t *Transfer) readServed(ctx context.Context, s network.Stream, c cid.Cid) served {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout(readReserve))
	err := t.reserveBlock(wctx, s, readReserve)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return served{c: c, err: ctx.Err()}
		}
		return served{c: c, err: fmt.Errorf("%w for %s", errNoMemory, shortCID(c))}
	}
	data, err := t.get(ctx, c)
	var held int64
	if data != nil {
		held = max(int64(len(data)), min(int64(cap(data)), readReserve))
	}
	t.releaseBlock(s, readReserve-held)
	return served{c: c, data: data, held: held, err: err}
}

// drop releases what a served block holds: its buffer and its memory.
func (t *Transfer) drop(s network.Stream, it served) {
	t.release(it.data)
	t.releaseBlock(s, it.held)
}

// get reads a block to serve: nil data for one the store does not have, cannot
// read, or holds too large for the protocol; an error once ctx is done.
func (t *Transfer) get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if t.bs == nil {
		return nil, nil
	}
	data, err := t.bs.Get(ctx, c)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading block %s: %w", shortCID(c), err)
		}
		// Our store failing is not the client's fault: it gets a DontHave and
		// keeps the stream, instead of a reset that makes it drop us.
		t.log.Warn("reading a block to serve; answering don't-have", "cid", shortCID(c), "err", err)
		return nil, nil
	}
	if len(data) > wire.MaxBlockSize {
		t.log.Warn("block too large to serve", "cid", shortCID(c), "size", len(data))
		t.release(data)
		return nil, nil
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// release gives a served block's buffer back to a Blockstore that reuses them.
func (t *Transfer) release(data []byte) {
	if r, ok := t.bs.(BlockReleaser); ok && data != nil {
		r.Release(data)
	}
}

// readWants reads the client's frames into q; it returns io.EOF when the
// client closes its side.
func (t *Transfer) readWants(s network.Stream, q *serveQueue) error {
	r := wire.NewReader(s, func(ty wire.Type) bool { return ty == wire.TypeWant || ty == wire.TypeCancel })
	asked := false
	for {
		_ = s.SetReadDeadline(time.Now().Add(t.cfg.idleTimeout))
		m, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("reading request: %w", err)
		}
		switch m.Type {
		case wire.TypeWant:
			if !asked && len(m.CIDs) > 0 {
				t.firstWant(s.Conn().RemotePeer(), s, m.CIDs[0])
				asked = true
			}
			t.served.wants.Add(int64(len(m.CIDs)))
			if err := q.push(m.CIDs); err != nil {
				return err
			}
		case wire.TypeCancel:
			q.cancel(m.CIDs)
		}
	}
}
