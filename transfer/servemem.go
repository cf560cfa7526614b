package transfer

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peer/transfer/wire"
)

// serveMemory is the budget of block bytes the server holds for all its streams at once: read
// from the store and not yet written out. A stream reserves before it reads a block (the largest
// a block can be, then only what the block takes), so a client that never reads holds what it
// was granted and no more, and every stream together never hold more than the limit, nor one
// peer more than its cap. When the budget is short, a stream waits, and what is freed goes to
// the waiting peer that holds least: a peer whose streams drain gets ahead of one whose streams
// sit on their blocks.
type serveMemory struct {
	mu      sync.Mutex
	limit   int64
	perPeer int64
	held    int64
	peak    int64
	peers   map[peer.ID]int64
	waiters []*memWaiter  // in arrival order
	freed   chan struct{} // closed and replaced whenever bytes are given back
	flows   map[*streamFlow]struct{}
	evicted int64
}

type memWaiter struct {
	p       peer.ID
	n       int64
	granted chan struct{}
	ok      bool // guarded by serveMemory.mu
}

func newServeMemory(limit, perPeer int64) *serveMemory {
	return &serveMemory{limit: limit, perPeer: perPeer, peers: map[peer.ID]int64{}, freed: make(chan struct{}),
		flows: map[*streamFlow]struct{}{}}
}

// evictAfter is how long a stream may sit on one block write while others wait for memory: past
// it, the stream stuck longest is reset to free what it holds. A client that reads at 512 KiB/s
// takes 2 s for a 1 MiB block.
const evictAfter = 2 * time.Second

func (m *serveMemory) track(fl *streamFlow) {
	m.mu.Lock()
	m.flows[fl] = struct{}{}
	m.mu.Unlock()
}

func (m *serveMemory) untrack(fl *streamFlow) {
	m.mu.Lock()
	delete(m.flows, fl)
	m.mu.Unlock()
}

// evictStuck resets the stream that has been writing one block longest, if for more than
// evictAfter: memory is short and it is not draining. It reports whether it reset one.
func (m *serveMemory) evictStuck() bool {
	cut := time.Now().Add(-evictAfter)
	var worst *streamFlow
	var worstAt time.Time
	m.mu.Lock()
	for fl := range m.flows {
		if at := fl.stuckSince(); !at.IsZero() && at.Before(cut) && (worst == nil || at.Before(worstAt)) {
			worst, worstAt = fl, at
		}
	}
	if worst != nil {
		delete(m.flows, worst) // reset once
		m.evicted++
	}
	m.mu.Unlock()
	if worst == nil {
		return false
	}
	_ = worst.s.Reset()
	return true
}

func (m *serveMemory) fitsLocked(p peer.ID, n int64) bool {
	return m.held+n <= m.limit && m.peers[p]+n <= m.perPeer
}

func (m *serveMemory) takeLocked(p peer.ID, n int64) {
	m.held += n
	m.peers[p] += n
	m.peak = max(m.peak, m.held)
}

// reserve takes n bytes for p, waiting until they fit or ctx ends.
func (m *serveMemory) reserve(ctx context.Context, p peer.ID, n int64) error {
	m.mu.Lock()
	if len(m.waiters) == 0 && m.fitsLocked(p, n) {
		m.takeLocked(p, n)
		m.mu.Unlock()
		return nil
	}
	w := &memWaiter{p: p, n: n, granted: make(chan struct{})}
	m.waiters = append(m.waiters, w)
	m.grantLocked()
	m.mu.Unlock()
	// While it waits, a stream stuck on a write is reset now and then: a client that does not
	// read frees what it holds sooner than its write deadline would.
	tick := time.NewTicker(evictAfter / 4)
	defer tick.Stop()
wait:
	for {
		select {
		case <-w.granted:
			return nil
		case <-tick.C:
			m.evictStuck()
		case <-ctx.Done():
			break wait
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.ok { // granted as ctx ended: give it back
		m.releaseLocked(p, n)
	} else {
		for i, x := range m.waiters {
			if x == w {
				m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
				break
			}
		}
	}
	return ctx.Err()
}

// release gives back n bytes p held.
func (m *serveMemory) release(p peer.ID, n int64) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	m.releaseLocked(p, n)
	m.mu.Unlock()
}

func (m *serveMemory) releaseLocked(p peer.ID, n int64) {
	m.held -= n
	if m.peers[p] -= n; m.peers[p] <= 0 {
		delete(m.peers, p)
	}
	close(m.freed)
	m.freed = make(chan struct{})
	m.grantLocked()
}

// grantLocked hands what fits to waiters, the one whose peer holds least first (the earliest of
// equals).
func (m *serveMemory) grantLocked() {
	for {
		best := -1
		for i, w := range m.waiters {
			if m.fitsLocked(w.p, w.n) && (best < 0 || m.peers[w.p] < m.peers[m.waiters[best].p]) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		w := m.waiters[best]
		m.waiters = append(m.waiters[:best], m.waiters[best+1:]...)
		m.takeLocked(w.p, w.n)
		w.ok = true
		close(w.granted)
	}
}

// freedChan is closed the next time bytes are given back.
func (m *serveMemory) freedChan() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.freed
}

func (m *serveMemory) stats() (held, peak, evicted int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held, m.peak, m.evicted
}

// readReserve is what a stream reserves before it reads a block, whose size it does not know yet.
const readReserve = wire.MaxBlockSize

// reserveBlock takes n bytes of the node's budget for stream s, and the same from its
// resource-manager scope, waiting until ctx ends for both. A scope that refuses (the node's
// resource manager is short) is asked again each time the budget frees bytes, or after a while.
func (t *Transfer) reserveBlock(ctx context.Context, s network.Stream, n int64) error {
	p := s.Conn().RemotePeer()
	backoff := 5 * time.Millisecond
	for {
		if err := t.mem.reserve(ctx, p, n); err != nil {
			return err
		}
		if err := s.Scope().ReserveMemory(int(n), network.ReservationPriorityMedium); err == nil {
			return nil
		}
		t.mem.release(p, n)
		freed := t.mem.freedChan()
		timer := time.NewTimer(backoff)
		select {
		case <-freed:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// releaseBlock gives back n bytes that stream s reserved.
func (t *Transfer) releaseBlock(s network.Stream, n int64) {
	if n <= 0 {
		return
	}
	s.Scope().ReleaseMemory(int(n))
	t.mem.release(s.Conn().RemotePeer(), n)
}
