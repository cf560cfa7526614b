package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap/client"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"peer/store"
)

// Close stops everything the Bitswap server started, after it has served: no goroutine of its
// own is left, and its protocols are gone from the host.
func TestBitswapCloseLeavesNoGoroutine(t *testing.T) {
	dir := t.TempDir()
	_, err := store.Init(dir)
	require.NoError(t, err)
	st, err := store.Open(dir)
	require.NoError(t, err)
	defer st.Close()
	data := bytes.Repeat([]byte("bitswap "), 3<<20/8)
	f, err := st.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{})
	require.NoError(t, err)

	h1, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer h1.Close()
	h2, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer h2.Close()
	net := bsnet.NewFromIpfsHost(h2)
	c := client.New(context.Background(), net, nil, blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())))
	net.Start(c)
	// Connected before the server starts: it learns of the peer all the same.
	require.NoError(t, h2.Connect(t.Context(), peer.AddrInfo{ID: h1.ID(), Addrs: h1.Addrs()}))
	before := goleak.IgnoreCurrent()

	m := &Metrics{BlocksSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"})}
	bs := startBitswap(h1, st, m, BitswapLimits{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	blk, err := c.GetBlock(ctx, f.Root)
	require.NoError(t, err)
	require.Equal(t, f.Root, blk.Cid())
	require.Equal(t, 1.0, testutil.ToFloat64(m.BlocksSent))

	require.NoError(t, bs.Close())
	for _, p := range h1.Mux().Protocols() {
		require.NotContains(t, BitswapProtocols, p, "Close unregisters the protocols")
	}
	net.Stop()
	require.NoError(t, c.Close())
	goleak.VerifyNone(t, before)
}
