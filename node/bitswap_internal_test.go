package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap/client"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"peer/internal/config"
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
	bs := startBitswap(h1, newBitswapNet(h1), nil, st, m, BitswapLimits{}, nil)
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

// upload_limit holds over Bitswap too: its blocks take their bytes from the bucket the transfer
// server takes from, so once the burst is spent a block waits for its bytes.
func TestBitswapTakesFromTheUploadLimit(t *testing.T) {
	dir := t.TempDir()
	_, err := store.Init(dir)
	require.NoError(t, err)
	st, err := store.Open(dir)
	require.NoError(t, err)
	defer st.Close()
	key, err := store.ReadIdentity(dir)
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API = ""
	cfg.UploadLimit = 1000 // bytes/s: a 1 MiB block past the burst waits for 17 minutes
	n, err := New(Options{Config: cfg, Key: key, Store: st})
	require.NoError(t, err)
	require.NoError(t, n.Start(t.Context()))
	defer n.Close()

	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	_, err = st.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{})
	require.NoError(t, err)
	ex, err := n.exchange()
	require.NoError(t, err)
	require.NotNil(t, ex.xfer.RateLimit())
	require.Same(t, ex.xfer.RateLimit(), ex.bs.store.lim, "one bucket for both protocols")

	leaf := func(i int) cid.Cid {
		c, err := cid.NewPrefixV1(cid.Raw, multihash.SHA2_256).Sum(data[i<<20 : (i+1)<<20])
		require.NoError(t, err)
		return c
	}
	// A deadline the wait would pass makes WaitN fail at once instead of waiting.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sent := 0
	for i := range 4 {
		if _, err := ex.bs.store.Get(ctx, leaf(i)); err == nil {
			sent++
		} else {
			require.ErrorContains(t, err, "upload limit")
		}
	}
	burst := ex.xfer.RateLimit().Burst()
	require.Equal(t, burst/(1<<20), sent, "the burst's worth of blocks, no more")
}

// A peer connected before the server starts is followed like any other: when it leaves, its
// wantlist goes with it.
func TestBitswapForgetsPeerConnectedBeforeStart(t *testing.T) {
	dir := t.TempDir()
	_, err := store.Init(dir)
	require.NoError(t, err)
	st, err := store.Open(dir)
	require.NoError(t, err)
	defer st.Close()
	h1, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer h1.Close()
	h2, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	defer h2.Close()
	require.NoError(t, h2.Connect(t.Context(), peer.AddrInfo{ID: h1.ID(), Addrs: h1.Addrs()}))

	m := &Metrics{BlocksSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"})}
	bs := startBitswap(h1, newBitswapNet(h1), nil, st, m, BitswapLimits{}, nil)
	defer bs.Close()

	want, err := cid.NewPrefixV1(cid.Raw, multihash.SHA2_256).Sum([]byte("not here"))
	require.NoError(t, err)
	s, err := h2.NewStream(t.Context(), h1.ID(), bsnet.ProtocolBitswap)
	require.NoError(t, err)
	msg := bsmsg.New(true)
	msg.AddEntry(want, 1, pb.Message_Wantlist_Block, false)
	require.NoError(t, msg.ToNetV1(s))
	require.Eventually(t, func() bool { return len(bs.srv.WantlistForPeer(h2.ID())) == 1 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, h2.Network().ClosePeer(h1.ID()))
	require.Eventually(t, func() bool { return len(bs.srv.WantlistForPeer(h2.ID())) == 0 }, 10*time.Second, 10*time.Millisecond,
		"the wantlist of a peer gone is dropped")
}
