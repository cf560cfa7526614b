package testnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/testnet"
)

func TestNewBuildsAConnectedNetwork(t *testing.T) {
	nw := testnet.New(t, 6)
	require.Len(t, nw.Nodes, 6)
	for i, n := range nw.Nodes {
		require.Equal(t, i, n.Index)
		require.NotEmpty(t, n.Host().Network().Peers(), "node %d connected", i)
		require.Positive(t, n.Discovery().RoutingTableSize(), "node %d routing table", i)
		for _, a := range n.Host().Addrs() {
			require.Contains(t, a.String(), "/ip4/127.0.0.1/tcp/", "loopback TCP only")
		}
		require.Equal(t, "/peer/testnet/kad/1.0.0", string(n.Discovery().Protocol()))
	}

	require.NoError(t, nw.Kill(3))
	require.False(t, nw.Nodes[3].Alive())
	require.Len(t, nw.Live(), 5)
	require.NoError(t, nw.Kill(3), "killing twice is harmless")
	require.Error(t, nw.Kill(6))
}

func TestStartRejectsBadArguments(t *testing.T) {
	_, err := testnet.Start(context.Background(), 1)
	require.ErrorContains(t, err, "at least 2")
	_, err = testnet.Start(context.Background(), 3, testnet.WithMocknet(-time.Second, 0))
	require.ErrorContains(t, err, "negative")
	_, err = testnet.Start(context.Background(), 3, testnet.WithNetwork(""))
	require.ErrorContains(t, err, "public network")
}

func TestCloseRemovesItsTempDir(t *testing.T) {
	nw, err := testnet.Start(t.Context(), 2)
	require.NoError(t, err)
	dir := nw.Dir()
	require.DirExists(t, dir)
	require.NoError(t, nw.Close())
	require.NoDirExists(t, dir)
	require.NoError(t, nw.Close())
}

func TestMocknetNetworkHasSlowLinks(t *testing.T) {
	const latency = 30 * time.Millisecond
	nw := testnet.New(t, 4, testnet.WithMocknet(latency, 0))
	require.NotNil(t, nw.Mocknet)
	a, b := nw.Nodes[1], nw.Nodes[0]
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	_, err := a.Connect(ctx, b.Addrs()[0].String())
	require.NoError(t, err)
	// A round trip over an existing connection: open a stream of a protocol b speaks.
	s, err := a.Host().NewStream(ctx, b.ID(), b.Discovery().Protocol())
	require.NoError(t, err)
	s.Close()
	require.GreaterOrEqual(t, time.Since(t0), latency, "a stream on a mocknet link waits for its latency")
	for _, n := range nw.Nodes {
		require.Contains(t, n.Host().Addrs()[0].String(), "/ip6/100::")
	}
}
