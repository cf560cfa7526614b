package testnet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The gossip scenario runs on links of 20 ms when no latency is given, and records what it used.
func TestBenchGossipRecordsTheLatencyItUses(t *testing.T) {
	o := BenchOptions{Scenario: "gossip"}
	require.NoError(t, o.defaults())
	require.Equal(t, 20*time.Millisecond, o.Latency)
	r := newResult(o)
	require.Equal(t, "20ms", r.Latency)
	require.Equal(t, 20*time.Millisecond, r.Options.Latency)

	o = BenchOptions{Scenario: "gossip", Latency: 3 * time.Millisecond}
	require.NoError(t, o.defaults())
	require.Equal(t, "3ms", newResult(o).Latency)

	o = BenchOptions{Scenario: "dht"}
	require.NoError(t, o.defaults())
	require.Equal(t, "0s", newResult(o).Latency, "loopback TCP: no added latency")
}

// Churn never kills more than it announced: at every step the count is at most MaxKill of the
// nodes, rounded down, and it reaches that at the last step (keeping one node alive).
func TestChurnKillsNoMoreThanAnnounced(t *testing.T) {
	for n := 2; n <= 200; n++ {
		for _, maxKill := range []float64{0.1, 0.25, 0.5, 0.9, 1} {
			for _, steps := range []int{1, 3, 6, 10} {
				limit := min(int(maxKill*float64(n)+1e-9), n-1)
				prev := 0
				for step := 0; step <= steps; step++ {
					k := killTarget(maxKill, step, steps, n)
					require.LessOrEqual(t, float64(k)/float64(n), maxKill+1e-12, "n=%d max=%v step %d/%d: %d killed", n, maxKill, step, steps, k)
					require.LessOrEqual(t, k, n-1, "one node stays alive")
					require.GreaterOrEqual(t, k, prev, "kills only grow")
					prev = k
				}
				require.Equal(t, limit, prev, "n=%d max=%v steps=%d: the last step reaches the limit", n, maxKill, steps)
				require.Zero(t, killTarget(maxKill, 0, steps, n))
			}
		}
	}
	// The case seen: 13 nodes, up to 90%: 11 killed (85%), not 12 (92%).
	require.Equal(t, 11, killTarget(0.9, 6, 6, 13))
}
