package gossiptest_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/gossip/gossiptest"
)

var propagation = flag.Bool("propagation", false, "measure propagation over 100 mocknet nodes with 20 ms links")

// TestPropagation100 reports per-node receive delays of announcements over
// 100 nodes of average degree 6 with 20 ms links. It runs only with
// -propagation:
//
//	go test ./gossip/gossiptest -run Propagation100 -v -args -propagation
func TestPropagation100(t *testing.T) {
	if !*propagation {
		t.Skip("run with -propagation")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	res, err := gossiptest.MeasurePropagation(ctx, gossiptest.PropagationOptions{Seed: 1})
	require.NoError(t, err)
	t.Logf("100 nodes, degree 6, 20 ms links: %v", res)
	require.Zero(t, res.Lost, "every node must receive every announcement")
	if res.P99 >= 500*time.Millisecond {
		t.Errorf("p99 %v, want < 500ms", res.P99)
	}
}

func TestPropagationSmall(t *testing.T) {
	res, err := gossiptest.MeasurePropagation(t.Context(), gossiptest.PropagationOptions{
		Nodes: 8, Degree: 3, Latency: 5 * time.Millisecond, Messages: 3, Seed: 2,
	})
	require.NoError(t, err)
	require.Zero(t, res.Lost)
	require.Len(t, res.Delays, 3*7)
	// Each receipt is at least one link away from its publisher.
	require.GreaterOrEqual(t, res.Delays[0], 5*time.Millisecond)
}
