package discovery

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
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

func (p *provider) run(ctx context.Context) {
	cfg := p.d.cfg
	var reprovide <-chan time.Time
	if cfg.Reprovide > 0 {
		t := time.NewTicker(cfg.Reprovide)
		defer t.Stop()
		reprovide = t.C
	}
	retry := time.NewTimer(cfg.ProvideRetry)
	retry.Stop()
	defer retry.Stop()
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
				// Nobody to provide to yet: try again later rather than fail every root.
				p.requeue(batch)
				retry.Reset(cfg.ProvideRetry)
				break
			}
			if failed := p.provideBatch(ctx, batch); len(failed) > 0 {
				p.requeue(failed)
				retry.Reset(cfg.ProvideRetry)
				break
			}
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
