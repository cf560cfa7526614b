package node_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"peer/node"
)

// BenchmarkNodeStartBootstrapped measures New+Start of a node that bootstraps its DHT off a
// local peer (Start returns once the routing table holds it), then Close.
//
//	go test -run '^$' -bench NodeStartBootstrapped -benchtime 20x ./node
func BenchmarkNodeStartBootstrapped(b *testing.B) {
	bootCfg := testConfig()
	bootCfg.Network = "bench"
	boot, err := node.New(node.Options{Config: bootCfg, Key: newKey(b)})
	require.NoError(b, err)
	require.NoError(b, boot.Start(b.Context()))
	defer boot.Close()

	cfg := testConfig()
	cfg.Network = "bench"
	cfg.Bootstrap = []string{boot.Addrs()[0].String()}
	key := newKey(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n, err := node.New(node.Options{Config: cfg, Key: key})
		require.NoError(b, err)
		require.NoError(b, n.Start(b.Context()))
		b.StopTimer()
		require.Equal(b, 1, n.Discovery().RoutingTableSize())
		require.NoError(b, n.Close())
		b.StartTimer()
	}
}
