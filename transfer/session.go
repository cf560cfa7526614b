package transfer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peer/transfer/wire"
)

// errNoRoot drops a provider that does not have the root.
var errNoRoot = errors.New("peer does not have the root")

// request is one CID asked from a session.
type request struct {
	sent time.Time
	est  int64 // bytes it was counted for in the window
}

// session is one peer serving one fetch over one stream: a writer goroutine
// that sends Want and Cancel frames as the window allows, and a reader
// goroutine that receives blocks and hands them to verification.
type session struct {
	f      *fetch
	p      peer.ID
	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{} // capacity 1: work may be assignable

	lastByte atomic.Int64 // unix nanoseconds of the last byte read
	bytesIn  atomic.Int64 // bytes read from the stream, whole blocks or not: what the rate measures
	// recv lets one Bitswap message at a time hand blocks to verification, as one reader does
	// for ID: the others wait with their blocks unanswered, so the window stays full and no more
	// is asked while the fetch cannot keep up (bitswapsource.go).
	recv sync.Mutex

	// Guarded by f.mu.
	st            network.Stream
	opened        bool
	dead          bool
	out           map[cid.Cid]request // requested, not answered
	order         []*block            // requests in the order sent (lazily trimmed)
	canceled      map[cid.Cid]struct{}
	pendingCancel []cid.Cid
	inflight      int64 // estimated bytes requested and not received
	window        int64
	rate          float64 // smoothed bytes/s
	lastIn        int64   // bytesIn at the last tick
	minRTT        time.Duration
	busySince     time.Time
	lacked        int // DontHave answers it gave
	stats         PeerStats
}

func newSession(f *fetch, p peer.ID) *session {
	ctx, cancel := context.WithCancel(f.ctx)
	s := &session{
		f:        f,
		p:        p,
		ctx:      ctx,
		cancel:   cancel,
		kick:     make(chan struct{}, 1),
		out:      make(map[cid.Cid]request),
		canceled: make(map[cid.Cid]struct{}),
		window:   f.t.cfg.initialWindow,
	}
	s.wake()
	return s
}

func (s *session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// stop ends the session's goroutines; its stream is reset.
func (s *session) stop() {
	s.cancel()
	s.f.mu.Lock()
	st := s.st
	s.f.mu.Unlock()
	if st != nil {
		_ = st.Reset()
	}
}

func (s *session) run() {
	f := s.f
	bs := f.t.cfg.bitswap
	if bs != nil && speaksOnlyOthers(f.t.h, s.p) {
		s.runBitswap(bs) // bitswapsource.go
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, f.t.cfg.dialTimeout)
	st, err := f.t.h.NewStream(ctx, s.p, ID)
	cancel()
	if err != nil && bs != nil && notSupported(err) {
		s.runBitswap(bs)
		return
	}
	if err != nil {
		f.dropSession(s, fmt.Errorf("opening stream: %w", err), false)
		return
	}
	f.mu.Lock()
	if s.dead {
		f.mu.Unlock()
		_ = st.Reset()
		return
	}
	s.st, s.opened = st, true
	f.mu.Unlock()
	s.lastByte.Store(time.Now().UnixNano())
	// A peer we are fetching from is not trimmed while the session lasts.
	f.t.h.ConnManager().Protect(s.p, f.tag)
	defer f.t.h.ConnManager().Unprotect(s.p, f.tag)

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		s.readLoop(st)
	}()
	s.writeLoop(st)

	f.mu.Lock()
	f.t.log.Debug("session ended", "peer", s.p.ShortString(), "window", s.window, "rate", int64(s.rate), "minRTT", s.minRTT)
	clean := !s.dead && len(s.out) == 0
	s.dead = true
	f.mu.Unlock()
	if clean {
		_ = st.SetReadDeadline(time.Now()) // ends the reader
		_ = st.Close()
	} else {
		_ = st.Reset()
	}
	<-readDone
}

// nextBatch waits for the session to be kicked and takes the cancels it owes and the wants the
// fetch assigns it; ok is false once the session has ended.
func (s *session) nextBatch() (cancels, wants []cid.Cid, ok bool) {
	select {
	case <-s.ctx.Done():
		return nil, nil, false
	case <-s.kick:
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.dead {
		return nil, nil, false
	}
	cancels, s.pendingCancel = s.pendingCancel, nil
	return cancels, f.assignLocked(s), true
}

func (s *session) writeLoop(st network.Stream) {
	f := s.f
	var buf []byte
	for {
		cancels, wants, ok := s.nextBatch()
		if !ok {
			return
		}

		buf = appendCIDFrames(buf[:0], wire.TypeCancel, cancels)
		buf = appendCIDFrames(buf, wire.TypeWant, wants)
		if len(buf) == 0 {
			continue
		}
		_ = st.SetWriteDeadline(time.Now().Add(writeTimeout(len(buf))))
		if _, err := st.Write(buf); err != nil {
			f.dropSession(s, fmt.Errorf("writing request: %w", err), false)
			return
		}
	}
}

func appendCIDFrames(dst []byte, t wire.Type, cids []cid.Cid) []byte {
	for len(cids) > 0 {
		n := min(len(cids), wire.MaxCIDsPerFrame)
		var err error
		if dst, err = wire.AppendControl(dst, &wire.Message{Type: t, CIDs: cids[:n]}); err != nil {
			panic(err) // CIDs come from verified blocks or the caller's root
		}
		cids = cids[n:]
	}
	return dst
}

// countingReader notes when the last byte arrived, for stall detection.
type countingReader struct {
	r io.Reader
	s *session
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.s.bytesIn.Add(int64(n))
		c.s.lastByte.Store(time.Now().UnixNano())
	}
	return n, err
}

func (s *session) readLoop(st network.Stream) {
	f := s.f
	r := wire.NewReader(countingReader{r: st, s: s}, func(t wire.Type) bool {
		return t == wire.TypeBlock || t == wire.TypeDontHave
	})
	for {
		_ = st.SetReadDeadline(time.Now().Add(f.t.cfg.idleTimeout))
		m, err := r.Read()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("peer closed the stream")
			}
			f.dropSession(s, fmt.Errorf("reading: %w", err), errors.Is(err, wire.ErrProtocol))
			return
		}
		var perr error
		if m.Type == wire.TypeBlock {
			perr = s.onBlock(m.CID, m.Data)
		} else {
			perr = s.onDontHave(m.CID)
		}
		if perr != nil {
			f.dropSession(s, perr, !errors.Is(perr, errNoRoot))
			return
		}
	}
}

// answeredLocked removes c from the requests of s; it reports whether c was
// requested or canceled (anything else is a protocol violation).
func (s *session) answeredLocked(c cid.Cid, now time.Time) (*block, bool) {
	b := s.f.blocks[c]
	if req, ok := s.out[c]; ok {
		delete(s.out, c)
		s.inflight -= req.est
		b.dropHolder(s)
		if rtt := now.Sub(req.sent); s.minRTT == 0 || rtt < s.minRTT {
			s.minRTT = rtt
		}
		for len(s.order) > 0 {
			if _, ok := s.out[s.order[0].c]; ok {
				break
			}
			s.order[0] = nil
			s.order = s.order[1:]
		}
		if len(s.out) == 0 {
			s.busySince = time.Time{}
		} else {
			s.busySince = now
		}
		return b, true
	}
	if _, ok := s.canceled[c]; ok {
		delete(s.canceled, c)
		return b, true
	}
	return nil, false
}

// onBlock takes a received block: the first copy goes to verification, the
// others to the duplicate count.
func (s *session) onBlock(c cid.Cid, data []byte) error {
	f := s.f
	now := time.Now()
	n := int64(len(data))
	f.mu.Lock()
	b, ok := s.answeredLocked(c, now)
	if !ok {
		f.mu.Unlock()
		wire.PutBuffer(data)
		return fmt.Errorf("%w: block %s", ErrUnrequested, c)
	}
	s.stats.Bytes += n
	f.stats.Received += n
	if b.inner {
		f.innerEst = (f.innerEst*3 + n) / 4
	} else {
		f.leafEst = (f.leafEst*3 + n) / 4
	}
	if b.state == stateVerifying || b.state == stateDone {
		s.stats.Duplicates += n
		f.stats.DuplicateBytes += n
		s.wake()
		f.mu.Unlock()
		wire.PutBuffer(data)
		return nil
	}
	if b.idx >= 0 {
		heap.Remove(&f.queue, b.idx)
	}
	b.state = stateVerifying
	for _, h := range b.holders {
		h.cancelLocked(b)
	}
	b.holders = b.holders[:0]
	s.wake()
	f.mu.Unlock()

	select {
	case f.verify <- verifyItem{s: s, b: b, data: data}:
		// Time spent waiting for our own verifiers is not the peer's silence.
		s.lastByte.Store(time.Now().UnixNano())
		return nil
	case <-s.ctx.Done():
		// Dropped meanwhile: the block goes back to the queue unverified.
		wire.PutBuffer(data)
		f.mu.Lock()
		b.state = stateRequested
		f.requeueLocked(b)
		f.mu.Unlock()
		return nil
	}
}

// onDontHave takes a DontHave answer: the block is asked from others.
func (s *session) onDontHave(c cid.Cid) error {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := s.answeredLocked(c, time.Now())
	if !ok {
		return fmt.Errorf("%w: dont-have %s", ErrUnrequested, c)
	}
	if !b.lacks(s.p) {
		b.lacking = append(b.lacking, s.p)
	}
	s.lacked++
	f.requeueLocked(b)
	if c.Equals(f.req.Root) {
		return errNoRoot
	}
	return nil
}

// requeueLocked puts b back in the queue if nobody is working on it, or aside
// (lackedLocked) if every live peer said it lacks it.
func (f *fetch) requeueLocked(b *block) {
	if b.state == stateRequested && len(b.holders) == 0 {
		b.state = stateQueued
		if f.lackedByAllLocked(b) {
			f.lacked = append(f.lacked, b)
		} else {
			heap.Push(&f.queue, b)
		}
		f.kickAllLocked()
	}
}

// lackedByAllLocked reports whether every live peer said it lacks b (and
// there is one): no peer asks for it again until a new one comes.
func (f *fetch) lackedByAllLocked(b *block) bool {
	if len(b.lacking) == 0 {
		return false
	}
	live := 0
	for _, s := range f.sessions {
		if s.dead {
			continue
		}
		if !b.lacks(s.p) {
			return false
		}
		live++
	}
	return live > 0
}

// cancelLocked withdraws the request of b from s.
func (s *session) cancelLocked(b *block) {
	req, ok := s.out[b.c]
	if !ok {
		return
	}
	delete(s.out, b.c)
	s.inflight -= req.est
	s.canceled[b.c] = struct{}{}
	s.pendingCancel = append(s.pendingCancel, b.c)
	if len(s.out) == 0 {
		s.busySince = time.Time{}
	}
	s.wake()
}

// tickLocked updates the measured rate and the window.
func (s *session) tickLocked(now time.Time, dt float64) {
	// Bytes as they arrive, not blocks as they complete: a peer that trickles a block out a byte
	// at a time shows the rate it really has, and the end game takes its work away.
	in := s.bytesIn.Load()
	delta := in - s.lastIn
	s.lastIn = in
	inst := 0.0
	if dt > 0 && (delta > 0 || len(s.out) > 0) {
		inst = float64(delta) / dt
		if s.rate == 0 {
			s.rate = inst
		} else {
			s.rate = 0.6*s.rate + 0.4*inst
		}
	}
	// The window follows the faster of the smoothed and the latest rate, so
	// it grows without the smoothing's lag (each tick at most doubles it
	// while the window is what limits the rate) and shrinks gently.
	if bw := max(s.rate, inst); bw > 0 && s.minRTT > 0 {
		w := int64(2 * bw * s.minRTT.Seconds())
		s.window = min(max(w, s.f.t.cfg.initialWindow), s.f.t.cfg.maxWindow)
		s.stats.MaxWindow = max(s.stats.MaxWindow, s.window)
	}
}

// expectedLocked estimates the seconds s needs to deliver n more bytes.
func (s *session) expectedLocked(n int64) float64 {
	r := s.rate
	if r <= 0 {
		r = 4 << 20 // not measured yet: assume a modest link
	}
	return float64(n) / r
}

// stalledLocked reports whether s has work pending and sent nothing for
// longer than its stall timeout (scaled with its rate).
func (s *session) stalledLocked(now time.Time) bool {
	if len(s.out) == 0 || !s.opened {
		return false
	}
	last := time.Unix(0, s.lastByte.Load())
	if s.busySince.After(last) {
		last = s.busySince
	}
	timeout := s.f.t.cfg.stallTimeout
	if s.rate > 0 {
		timeout = max(timeout, time.Duration(4*float64(wire.MaxBlockSize)/s.rate*float64(time.Second)))
	}
	return now.Sub(last) > timeout
}

// assignLocked picks the next blocks for s: the first waiting blocks in
// queue order while its window has room, then, with nothing left waiting,
// work that slower or silent peers hold (the end game).
func (f *fetch) assignLocked(s *session) []cid.Cid {
	now := time.Now()
	var wants []cid.Cid
	var skipped []*block
	for len(f.queue) > 0 && s.inflight < s.window && len(s.out) < maxOutstanding {
		b := heap.Pop(&f.queue).(*block)
		if b.lacks(s.p) {
			if f.lackedByAllLocked(b) {
				f.lacked = append(f.lacked, b)
				continue
			}
			// Others have it: leave it to them, looking no further than
			// maxSkipped blocks per wake, so a wake costs the same however
			// long the queue is.
			skipped = append(skipped, b)
			if len(skipped) == maxSkipped {
				break
			}
			continue
		}
		f.requestLocked(s, b, now)
		wants = append(wants, b.c)
	}
	for _, b := range skipped {
		heap.Push(&f.queue, b)
	}
	if s.inflight < s.window && len(s.out) < maxOutstanding {
		wants = f.endgameLocked(s, wants, now)
	}
	return wants
}

// maxSkipped bounds the blocks one wake of a session passes over because its
// peer lacks them and another has them.
const maxSkipped = 256

func (f *fetch) estimateLocked(b *block) int64 {
	if b.inner {
		return max(f.innerEst, 1024)
	}
	return max(f.leafEst, 1024)
}

func (f *fetch) requestLocked(s *session, b *block, now time.Time) {
	est := f.estimateLocked(b)
	s.out[b.c] = request{sent: now, est: est}
	s.inflight += est
	s.order = append(s.order, b)
	if len(s.out) == 1 {
		s.busySince = now
	}
	b.holders = append(b.holders, s)
	b.state = stateRequested
}

// endgameLocked lets an idle session s take over work from others. A block
// queued behind much slower progress at another peer moves to s (Cancel
// there); the block a silent peer is working on is asked from s too, and
// whichever copy comes first wins (the loser is canceled).
func (f *fetch) endgameLocked(s *session, wants []cid.Cid, now time.Time) []cid.Cid {
	if s.inflight > s.window/2 {
		return wants
	}
	if s.lacked > 0 && s.stats.Blocks == 0 {
		// A peer that said it lacks blocks and has delivered none likely holds nothing: taking
		// work from a peer that is sending it would only have that work sent twice.
		return wants
	}
	for range 256 {
		if s.inflight >= s.window || len(s.out) >= maxOutstanding {
			break
		}
		var v *session
		var vt float64
		for _, o := range f.sessions {
			if o == s || o.dead || len(o.out) == 0 {
				continue
			}
			if t := o.expectedLocked(o.inflight); v == nil || t > vt {
				v, vt = o, t
			}
		}
		if v == nil {
			break
		}
		est := f.leafEst
		if vt > 2*s.expectedLocked(s.inflight+est)+0.02 {
			if b := v.tailLocked(s); b != nil {
				v.cancelLocked(b)
				b.dropHolder(v)
				f.requestLocked(s, b, now)
				wants = append(wants, b.c)
				continue
			}
		}
		// Duplicate only what a silent peer sits on, a few blocks at a time.
		silent := now.Sub(time.Unix(0, v.lastByte.Load()))
		delay := 250 * time.Millisecond
		if v.rate > 0 {
			delay = max(delay, time.Duration(f.t.cfg.endgameStallFactor*float64(est)/v.rate*float64(time.Second)))
		}
		if silent < delay || len(s.out) >= 4 {
			break
		}
		b := v.headLocked(s)
		if b == nil {
			break
		}
		f.requestLocked(s, b, now)
		wants = append(wants, b.c)
	}
	return wants
}

// tailLocked returns the last block requested from s that thief may take
// over alone, or nil.
func (s *session) tailLocked(thief *session) *block {
	for i, n := len(s.order)-1, 0; i >= 0 && n < 64; i-- {
		b := s.order[i]
		if _, ok := s.out[b.c]; !ok {
			continue
		}
		n++
		if len(b.holders) == 1 && !b.lacks(thief.p) {
			return b
		}
	}
	return nil
}

// headLocked returns the oldest block requested from s that thief may also
// ask for, or nil.
func (s *session) headLocked(thief *session) *block {
	for i := 0; i < len(s.order) && i < 64; i++ {
		b := s.order[i]
		if _, ok := s.out[b.c]; !ok {
			continue
		}
		if len(b.holders) == 1 && !b.lacks(thief.p) {
			return b
		}
	}
	return nil
}
