package testnet_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/internal/config"
	"peer/node"
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

func TestShareSearchFetchInOneLine(t *testing.T) {
	nw := testnet.New(t, 4)
	src := filepath.Join(t.TempDir(), "notes-4711.txt")
	data := bytes.Repeat([]byte("peer testnet\n"), 100_000)
	require.NoError(t, os.WriteFile(src, data, 0o644))

	f, err := nw.Nodes[1].Share(t.Context(), src, node.ShareOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, o := range nw.Nodes[2].Search("notes-4711") {
			if o.CID == f.CID {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the announcement reaches node 2")

	out := filepath.Join(t.TempDir(), "fetched.txt")
	res, err := nw.Nodes[3].Fetch(t.Context(), f.Root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	require.Equal(t, uint64(len(data)), res.File.Size)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

func TestOptionsReachEveryNode(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]bool{}
	nw := testnet.New(t, 3,
		testnet.WithNetwork("lab"),
		testnet.WithConcurrency(1),
		testnet.WithConfig(func(i int, c *config.Config) { c.ConnLow = 10 + i }),
		testnet.WithNodeOptions(func(i int, o *node.Options) {
			mu.Lock()
			seen[i] = true
			mu.Unlock()
		}))
	for i, n := range nw.Nodes {
		require.Equal(t, 10+i, n.Config().ConnLow)
		require.Equal(t, "lab", n.Config().Network)
		require.Equal(t, "/peer/lab/kad/1.0.0", string(n.Discovery().Protocol()))
		require.True(t, seen[i])
	}
}
