package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"

	"peer/node/api"
)

// The dashboard's bandwidth chart: one sample a second, the last five minutes.
const (
	bandwidthInterval = time.Second
	bandwidthSamples  = 300
)

// bandwidthHistory samples the node's bandwidth counter on a ticker and keeps the rates of the
// last bandwidthSamples intervals. Its zero value is ready; start begins sampling.
type bandwidthHistory struct {
	mu      sync.Mutex
	samples []api.BandwidthSample // oldest first
}

// start samples bw every bandwidthInterval until the returned function is called (which waits
// for the sampler to end).
func (b *bandwidthHistory) start(bw *metrics.BandwidthCounter) func() error {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(bandwidthInterval)
		defer t.Stop()
		last, lastAt := bw.GetBandwidthTotals(), time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				tot := bw.GetBandwidthTotals()
				b.add(now, last, tot, now.Sub(lastAt))
				last, lastAt = tot, now
			}
		}
	}()
	return func() error {
		close(stop)
		<-done
		return nil
	}
}

func (b *bandwidthHistory) add(now time.Time, last, tot metrics.Stats, dt time.Duration) {
	s := dt.Seconds()
	if s <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.samples = append(b.samples, api.BandwidthSample{
		Time: now.UTC(),
		In:   float64(max(tot.TotalIn-last.TotalIn, 0)) / s,
		Out:  float64(max(tot.TotalOut-last.TotalOut, 0)) / s,
	})
	if over := len(b.samples) - bandwidthSamples; over > 0 {
		b.samples = append(b.samples[:0], b.samples[over:]...)
	}
}

func (b *bandwidthHistory) list() []api.BandwidthSample {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.BandwidthSample{}, b.samples...)
}

var _ api.BandwidthSource = (*Node)(nil)

// Bandwidth is the node's recent bandwidth, as GET /api/v1/bandwidth answers.
func (n *Node) Bandwidth() api.Bandwidth {
	tot := n.bw.GetBandwidthTotals()
	return api.Bandwidth{IntervalMS: bandwidthInterval.Milliseconds(), Samples: n.bwHist.list(), TotalIn: tot.TotalIn, TotalOut: tot.TotalOut}
}
