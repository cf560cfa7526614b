package node

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/stretchr/testify/require"
)

// Samples are rates over each interval, oldest first, and only the last bandwidthSamples stay.
func TestBandwidthHistoryKeepsTheLastMinutes(t *testing.T) {
	var b bandwidthHistory
	start := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	var last metrics.Stats
	for i := 1; i <= bandwidthSamples+10; i++ {
		tot := metrics.Stats{TotalIn: last.TotalIn + int64(1000*i), TotalOut: last.TotalOut + 500}
		b.add(start.Add(time.Duration(i)*time.Second), last, tot, 2*time.Second)
		last = tot
	}
	got := b.list()
	require.Len(t, got, bandwidthSamples)
	require.Equal(t, start.Add(11*time.Second), got[0].Time, "the oldest ten are gone")
	require.InDelta(t, 1000*11/2.0, got[0].In, 1e-9, "bytes over the interval's seconds")
	require.InDelta(t, 250, got[0].Out, 1e-9)
	require.Equal(t, start.Add((bandwidthSamples+10)*time.Second), got[len(got)-1].Time)

	// A counter that goes back (it never should) gives 0, not a negative rate; no time, no sample.
	b.add(start, metrics.Stats{TotalIn: 10}, metrics.Stats{TotalIn: 5}, time.Second)
	require.Zero(t, b.list()[bandwidthSamples-1].In)
	b.add(start, last, last, 0)
	require.Len(t, b.list(), bandwidthSamples)
}

// The sampler stops when asked.
func TestBandwidthSamplerStops(t *testing.T) {
	var b bandwidthHistory
	bw := metrics.NewBandwidthCounter()
	stop := b.start(bw)
	require.Eventually(t, func() bool { return len(b.list()) >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
}
