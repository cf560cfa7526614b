package discovery

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// Stats counts the provide work.
type Stats struct {
	Roots         int       // roots provided and re-provided on schedule
	Pending       int       // roots waiting in the queue
	Provided      uint64    // successful provides since start
	Failed        uint64    // failed provides since start (they are retried)
	LastReprovide time.Time // zero until the first scheduled round
}

// provider is the provide queue: Provide adds roots, one worker drains the queue in batches,
// and a timer puts every root back on it every Reprovide.
type provider struct {
	d *Discovery

	mu            sync.Mutex
	roots         map[cid.Cid]struct{}
	queued        map[cid.Cid]struct{}
	queue         []cid.Cid
	lastReprovide time.Time
	wake          chan struct{}
	// waitingForPeers is set while queued roots wait for the routing table's first peer; the
	// next identified peer then wakes the worker.
	waitingForPeers atomic.Bool
	// peerSeen is set by each identification seen while roots wait.
	peerSeen atomic.Bool

	provided atomic.Uint64
	failed   atomic.Uint64
}

func newProvider(d *Discovery) *provider {
	return &provider{
		d:      d,
		roots:  map[cid.Cid]struct{}{},
		queued: map[cid.Cid]struct{}{},
		wake:   make(chan struct{}, 1),
	}
}

// Provide queues roots to be announced on the DHT and re-announced every Reprovide. It never
// blocks; the worker provides them in batches. Queue only file roots, not every block.
func (d *Discovery) Provide(roots ...cid.Cid) {
	p := d.prov
	p.mu.Lock()
	for _, c := range roots {
		p.roots[c] = struct{}{}
		p.enqueueLocked(c)
	}
	p.mu.Unlock()
	p.signal()
}

// Unprovide stops providing root: it leaves the queue if it waits there, and is not re-provided
// (existing records expire on their own, within 48h).
func (d *Discovery) Unprovide(root cid.Cid) {
	p := d.prov
	p.mu.Lock()
	delete(p.roots, root)
	if _, ok := p.queued[root]; ok {
		delete(p.queued, root)
		p.queue = slices.DeleteFunc(p.queue, root.Equals)
	}
	p.mu.Unlock()
}

// Stats reports the provide queue's counters.
func (d *Discovery) Stats() Stats {
	p := d.prov
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{
		Roots:         len(p.roots),
		Pending:       len(p.queue),
		Provided:      p.provided.Load(),
		Failed:        p.failed.Load(),
		LastReprovide: p.lastReprovide,
	}
}

func (p *provider) enqueueLocked(c cid.Cid) {
	if _, ok := p.queued[c]; ok {
		return
	}
	p.queued[c] = struct{}{}
	p.queue = append(p.queue, c)
}

func (p *provider) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// backoff is the wait between failed provide rounds: min, doubled per failed round, capped at
// max, back to min after a round that succeeds.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

// next is the wait before the next try after a failed round.
func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.min
	case b.cur < b.max:
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// peerSettle is how soon the worker looks again when a peer was identified but the DHT has not
// yet put it in the routing table (both learn of the peer from the same event), and how many
// times it looks after one identification.
const (
	peerSettle      = 50 * time.Millisecond
	peerSettleTries = 40
)

func (p *provider) run(ctx context.Context) {
	cfg := p.d.cfg
	var reprovide <-chan time.Time
	if cfg.Reprovide > 0 {
		t := time.NewTicker(cfg.Reprovide)
		defer t.Stop()
		reprovide = t.C
	}
	// The event bus blocks its emitters on a full subscriber, so a goroutine of its own drains
	// the identifications and wakes the worker only when roots wait for a first peer.
	sub, err := p.d.h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted), eventbus.Name("peer-provider"))
	if err != nil {
		logger().Warn("provider cannot watch for peers; roots wait for the retry timer", "err", err)
	} else {
		defer sub.Close()
		go func() {
			for range sub.Out() {
				if p.waitingForPeers.Load() {
					p.peerSeen.Store(true)
					p.signal()
				}
			}
		}()
	}
	retry := time.NewTimer(cfg.ProvideRetry)
	retry.Stop()
	defer retry.Stop()
	fails := newBackoff(cfg.ProvideRetry, cfg.ProvideRetryMax)
	settle := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-retry.C:
		case now := <-reprovide:
			p.mu.Lock()
			for c := range p.roots {
				p.enqueueLocked(c)
			}
			p.lastReprovide = now
			p.mu.Unlock()
		}
		for ctx.Err() == nil {
			batch := p.take(cfg.ProvideBatch)
			if len(batch) == 0 {
				break
			}
			if p.d.kad.Load().RoutingTable().Size() == 0 {
				// Nobody to provide to yet: wait for an identified peer rather than fail every
				// root. A peer just identified may be a moment from the table: look again soon,
				// a bounded number of times.
				p.requeue(batch)
				p.waitingForPeers.Store(true)
				if p.peerSeen.Swap(false) {
					settle = peerSettleTries
				}
				if settle > 0 {
					settle--
					retry.Reset(peerSettle)
				}
				break
			}
			p.waitingForPeers.Store(false)
			p.peerSeen.Store(false)
			settle = 0
			if failed := p.provideBatch(ctx, batch); len(failed) > 0 {
				p.requeue(failed)
				retry.Reset(fails.next())
				break
			}
			fails.reset()
		}
	}
}

func (p *provider) take(n int) []cid.Cid {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > len(p.queue) {
		n = len(p.queue)
	}
	batch := append([]cid.Cid(nil), p.queue[:n]...)
	p.queue = p.queue[n:]
	for _, c := range batch {
		delete(p.queued, c)
	}
	return batch
}

// requeue puts roots back unless they were unprovided meanwhile.
func (p *provider) requeue(cs []cid.Cid) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		if _, ok := p.roots[c]; ok {
			p.enqueueLocked(c)
		}
	}
}

// provideBatch provides each root of batch, ProvideConcurrency at a time, and returns those
// that failed.
func (p *provider) provideBatch(ctx context.Context, batch []cid.Cid) []cid.Cid {
	cfg := p.d.cfg
	sem := make(chan struct{}, cfg.ProvideConcurrency)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []cid.Cid
	)
	for _, c := range batch {
		sem <- struct{}{}
		wg.Add(1)
		go func(c cid.Cid) {
			defer func() { <-sem; wg.Done() }()
			pctx, cancel := context.WithTimeout(ctx, cfg.ProvideTimeout)
			defer cancel()
			if err := p.d.kad.Load().Provide(pctx, c, true); err != nil {
				p.failed.Add(1)
				logger().Debug("provide failed; will retry", "cid", c.String(), "err", err)
				mu.Lock()
				failed = append(failed, c)
				mu.Unlock()
				return
			}
			p.provided.Add(1)
		}(c)
	}
	wg.Wait()
	return failed
}
