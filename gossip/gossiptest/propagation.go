package gossiptest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"peer/gossip"
)

// PropagationOptions shape a propagation measurement.
type PropagationOptions struct {
	Nodes    int           // default 100
	Degree   int           // average connections per node; default 6
	Latency  time.Duration // per link; default 20 ms
	Messages int           // announcements published, one at a time; default 20
	// Timeout bounds the wait for one announcement to reach every node;
	// nodes it has not reached by then count as lost. Default 10 s.
	Timeout time.Duration
	Seed    uint64
}

// PropagationResult holds per-node receive delays: for each announcement and
// each node but its publisher, the time from the Publish call to the node's
// callback.
type PropagationResult struct {
	Delays             []time.Duration // sorted
	P50, P95, P99, Max time.Duration
	Lost               int // receipts that did not happen within Timeout
	Setup              time.Duration
}

func (r PropagationResult) String() string {
	return fmt.Sprintf("samples=%d lost=%d p50=%v p95=%v p99=%v max=%v (setup %v)",
		len(r.Delays), r.Lost, r.P50.Round(time.Millisecond), r.P95.Round(time.Millisecond),
		r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.Setup.Round(time.Millisecond))
}

// MeasurePropagation builds a mocknet of opts.Nodes gossip nodes, lets the
// mesh form (one warm-up announcement must reach everyone), then publishes
// opts.Messages announcements from random nodes, one after the other, and
// records how long each took to reach each node.
func MeasurePropagation(ctx context.Context, opts PropagationOptions) (PropagationResult, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 100
	}
	if opts.Degree == 0 {
		opts.Degree = 6
	}
	if opts.Latency == 0 {
		opts.Latency = 20 * time.Millisecond
	}
	if opts.Messages == 0 {
		opts.Messages = 20
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	var res PropagationResult
	start := time.Now()
	nw, err := NewNetwork(ctx, opts.Nodes, Options{Latency: opts.Latency, Degree: opts.Degree, Seed: opts.Seed})
	if err != nil {
		return res, err
	}
	defer nw.Close()
	if err := nw.WaitMesh(ctx); err != nil {
		return res, err
	}
	publish := func(i, k int) (gossip.Announcement, time.Time, error) {
		a := gossip.Announcement{
			Root: TestCID(fmt.Sprintf("propagation %d", k)),
			Name: fmt.Sprintf("file-%d.bin", k),
			Size: uint64(k + 1),
		}
		t0 := time.Now()
		err := nw.Nodes[i].Gossip.Publish(ctx, a)
		return a, t0, err
	}
	// Warm-up: wait until one announcement reached every node, so that the
	// meshes have formed before measuring.
	a, _, err := publish(0, -1)
	if err != nil {
		return res, err
	}
	for _, nd := range nw.Nodes[1:] {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := nd.WaitFor(wctx, func(b gossip.Announcement) bool { return b.Root == a.Root })
		cancel()
		if err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	res.Setup = time.Since(start)
	for k := range opts.Messages {
		origin := nw.rng.IntN(len(nw.Nodes))
		a, t0, err := publish(origin, k)
		if err != nil {
			return res, err
		}
		wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		for _, nd := range nw.Nodes {
			if nd.Index == origin {
				continue
			}
			r, err := nd.WaitFor(wctx, func(b gossip.Announcement) bool { return b.Root == a.Root })
			if err != nil {
				if ctx.Err() != nil {
					cancel()
					return res, ctx.Err()
				}
				res.Lost++
				continue
			}
			res.Delays = append(res.Delays, r.At.Sub(t0))
		}
		cancel()
	}
	slices.Sort(res.Delays)
	res.P50 = percentile(res.Delays, 0.50)
	res.P95 = percentile(res.Delays, 0.95)
	res.P99 = percentile(res.Delays, 0.99)
	if len(res.Delays) > 0 {
		res.Max = res.Delays[len(res.Delays)-1]
	}
	return res, nil
}

// percentile of sorted samples, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
