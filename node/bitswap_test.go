package node_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap/client"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
)

// loopbackHost is a plain libp2p host (libp2p's defaults), as an IPFS node has, on loopback.
func loopbackHost(tb testing.TB) host.Host {
	tb.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func connectTo(tb testing.TB, h host.Host, n *node.Node) {
	tb.Helper()
	require.NoError(tb, h.Connect(context.Background(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}))
}

// ipfsClient is boxo's Bitswap client on a host of its own, with an empty in-memory blockstore:
// an IPFS node that fetches from ours, as Kubo does.
type ipfsClient struct {
	h    host.Host
	bs   *client.Client
	net  bsnetwork.BitSwapNetwork
	serv blockservice.BlockService
}

// newIPFSClient connects a boxo Bitswap client to n, speaking only protos (nil: every version).
func newIPFSClient(tb testing.TB, n *node.Node, protos ...protocol.ID) *ipfsClient {
	tb.Helper()
	c := dialIPFSClient(tb, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}, protos...)
	tb.Cleanup(c.close)
	return c
}

// dialIPFSClient connects a boxo Bitswap client to ai; close stops it and its host.
func dialIPFSClient(tb testing.TB, ai peer.AddrInfo, protos ...protocol.ID) *ipfsClient {
	tb.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(tb, err)
	var opts []bsnet.NetOpt
	if len(protos) > 0 {
		opts = append(opts, bsnet.SupportedProtocols(protos))
	}
	net := bsnet.NewFromIpfsHost(h, opts...)
	bstore := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	bs := client.New(context.Background(), net, nil, bstore)
	net.Start(bs)
	serv := blockservice.New(bstore, bs)
	require.NoError(tb, h.Connect(context.Background(), ai))
	return &ipfsClient{h: h, bs: bs, net: net, serv: serv}
}

func (c *ipfsClient) close() {
	c.net.Stop()
	_ = c.serv.Close()
	_ = c.h.Close()
}

// cat reads the UnixFS file root with boxo's DAG reader, every block over Bitswap.
func (c *ipfsClient) cat(ctx context.Context, root cid.Cid) ([]byte, error) {
	var b bytes.Buffer
	_, err := c.catTo(ctx, root, &b)
	return b.Bytes(), err
}

// catTo reads the file root into w as `ipfs cat` does: a DAG reader over one Bitswap session.
func (c *ipfsClient) catTo(ctx context.Context, root cid.Cid, w io.Writer) (int64, error) {
	dag := merkledag.NewSession(ctx, merkledag.NewDAGService(c.serv))
	nd, err := dag.Get(ctx, root)
	if err != nil {
		return 0, err
	}
	r, err := uio.NewDagReader(ctx, nd, dag)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, r)
}

// The node answers every Bitswap version Kubo speaks, and a boxo Bitswap client (1.2.0 as Kubo,
// or 1.1.0) reads a multi-block file it shares in place, and one whose blocks it owns, byte for
// byte.
func TestBitswapClientFetchesFiles(t *testing.T) {
	a := repoNode(t, nil)
	protos := a.Host().Mux().Protocols()
	for _, p := range []protocol.ID{"/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0", "/ipfs/bitswap"} {
		require.Contains(t, protos, p)
	}

	path, inPlace := writeFile(t, 3<<20+123, 7)
	shared, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	require.Equal(t, path, shared.Path, "referenced in place")
	owned := bytes.Repeat([]byte("owned by the repo "), 2<<20/18)
	added, err := a.Store().Add(t.Context(), bytes.NewReader(owned), "owned", store.AddOptions{})
	require.NoError(t, err)
	require.Empty(t, added.Path, "owned blocks")

	// Bitswap 1.0.0 sends a block without its CID prefix, so the receiver can only name it as
	// CIDv0 (dag-pb): it carries no raw leaf, nor any CIDv1 file, ours or Kubo's.
	for _, v := range []protocol.ID{bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne} {
		t.Run(string(v), func(t *testing.T) {
			c := newIPFSClient(t, a, v)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			got, err := c.cat(ctx, shared.Root)
			require.NoError(t, err)
			require.True(t, bytes.Equal(inPlace, got), "the file shared in place, byte for byte")
			got, err = c.cat(ctx, added.Root)
			require.NoError(t, err)
			require.True(t, bytes.Equal(owned, got), "the owned file, byte for byte")
		})
	}
}

// probe speaks raw Bitswap: it sends a wantlist and records every message the node sends back.
type probe struct {
	h    host.Host
	net  bsnetwork.BitSwapNetwork
	msgs chan bsmsg.BitSwapMessage
}

func newProbe(tb testing.TB, n *node.Node) *probe {
	tb.Helper()
	p := &probe{h: loopbackHost(tb), msgs: make(chan bsmsg.BitSwapMessage, 1024)}
	p.net = bsnet.NewFromIpfsHost(p.h)
	p.net.Start(p)
	tb.Cleanup(p.net.Stop)
	connectTo(tb, p.h, n)
	return p
}

func (p *probe) ReceiveMessage(_ context.Context, _ peer.ID, m bsmsg.BitSwapMessage) { p.msgs <- m }
func (p *probe) ReceiveError(error)                                                  {}
func (p *probe) PeerConnected(peer.ID)                                               {}
func (p *probe) PeerDisconnected(peer.ID)                                            {}

// want sends want-block entries for cs, asking for DONT_HAVE.
func (p *probe) want(tb testing.TB, to peer.ID, cs ...cid.Cid) {
	tb.Helper()
	m := bsmsg.New(false)
	for i, c := range cs {
		m.AddEntry(c, int32(len(cs)-i), pb.Message_Wantlist_Block, true)
	}
	require.NoError(tb, p.net.SendMessage(tb.Context(), to, m))
}

// answer waits for the node's answer about c: its block, or false for DONT_HAVE.
func (p *probe) answer(tb testing.TB, c cid.Cid) (block []byte, have bool) {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			for _, b := range m.Blocks() {
				if b.Cid().Equals(c) {
					return b.RawData(), true
				}
			}
			if slices.ContainsFunc(m.DontHaves(), c.Equals) {
				return nil, false
			}
		case <-timeout:
			tb.Fatalf("no answer about %s", c)
		}
	}
}

// leafOf is the CID of the raw leaf holding data.
func leafOf(tb testing.TB, data []byte) cid.Cid {
	tb.Helper()
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	require.NoError(tb, err)
	return cid.NewCidV1(cid.Raw, h)
}

// The serving rules of our transfer protocol hold over Bitswap: a removed file is not served
// (its blocks wait for gc on disk), nor a file shared in place that changed; a block the node
// never had is DONT_HAVE.
func TestBitswapServesOnlyHeldIntactFiles(t *testing.T) {
	a := repoNode(t, nil)
	p := newProbe(t, a)

	// Added, not shared: what is served does not depend on announcing.
	_, x := writeFile(t, 2<<20+1, 8)
	xf, err := a.Store().Add(t.Context(), bytes.NewReader(x), "x", store.AddOptions{})
	require.NoError(t, err)
	yPath, y := writeFile(t, 2<<20+2, 9)
	yf := addInPlace(t, a, yPath)
	xLeaf, yLeaf := leafOf(t, x[:1<<20]), leafOf(t, y[:1<<20])

	for _, c := range []cid.Cid{xf.Root, xLeaf, yf.Root, yLeaf} {
		p.want(t, a.ID(), c)
		got, ok := p.answer(t, c)
		require.True(t, ok, "held: %s is served", c)
		require.Equal(t, c, verify(t, c, got))
	}

	require.NoError(t, a.Remove(t.Context(), xf.Root))
	require.True(t, a.Store().HasBlock(t.Context(), xLeaf), "the removed file's blocks are still on disk")
	for _, c := range []cid.Cid{xf.Root, xLeaf} {
		p.want(t, a.ID(), c)
		_, ok := p.answer(t, c)
		require.False(t, ok, "removed: %s is DONT_HAVE", c)
	}

	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(yPath, later, later)) // touched: no longer the version hashed
	p.want(t, a.ID(), yLeaf)
	_, ok := p.answer(t, yLeaf)
	require.False(t, ok, "changed: its leaf is DONT_HAVE")
	require.Eventually(t, func() bool { f, _ := a.Store().File(yf.Root); return f.State == store.Changed }, 5*time.Second, 10*time.Millisecond)
	p.want(t, a.ID(), yf.Root)
	_, ok = p.answer(t, yf.Root)
	require.False(t, ok, "changed: its owned root is DONT_HAVE too")

	never := leafOf(t, []byte("never held"))
	p.want(t, a.ID(), never)
	_, ok = p.answer(t, never)
	require.False(t, ok)
}

// addInPlace adds the file at path to n's store, referenced where it lies.
func addInPlace(tb testing.TB, n *node.Node, path string) store.File {
	tb.Helper()
	fh, err := os.Open(path)
	require.NoError(tb, err)
	defer fh.Close()
	f, err := n.Store().Add(tb.Context(), fh, "in place", store.AddOptions{Reference: true, Path: path})
	require.NoError(tb, err)
	return f
}

// verify checks that data is the block c names and returns the CID computed from it.
func verify(tb testing.TB, c cid.Cid, data []byte) cid.Cid {
	tb.Helper()
	got, err := c.Prefix().Sum(data)
	require.NoError(tb, err)
	return got
}

// A peer that sends a huge wantlist has only so many of its entries kept, and answered; the
// limit can be set per node.
func TestBitswapWantlistIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits node.BitswapLimits
		want   int
	}{
		{"default", node.BitswapLimits{}, node.DefaultBitswapLimits().Wantlist},
		{"set", node.BitswapLimits{Wantlist: 100}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := repoNode(t, nil, func(o *node.Options) { o.BitswapLimits = tc.limits })
			p := newProbe(t, a)
			cs := make([]cid.Cid, 5000)
			asked := map[cid.Cid]bool{}
			for i := range cs {
				cs[i] = leafOf(t, []byte{byte(i), byte(i >> 8), 'w'})
				asked[cs[i]] = true
			}
			p.want(t, a.ID(), cs...)
			answered := map[cid.Cid]bool{}
			timeout := time.After(20 * time.Second)
			for len(answered) < tc.want {
				select {
				case m := <-p.msgs:
					require.Empty(t, m.Blocks())
					for _, c := range m.DontHaves() {
						require.True(t, asked[c], "a DONT_HAVE for what was asked")
						answered[c] = true
					}
				case <-timeout:
					t.Fatalf("%d of %d wants answered", len(answered), tc.want)
				}
			}
			kept := node.BitswapWantlist(a, p.h.ID())
			require.Len(t, kept, tc.want, "the wantlist kept is cut to the limit")
			for _, c := range kept {
				require.True(t, answered[c], "what is kept is what was answered")
			}
		})
	}
}

// Turning Bitswap off, in the config or by option, registers no Bitswap protocol: an IPFS peer
// is told the node does not speak it.
func TestBitswapOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*node.Options)
	}{
		{"config", func(o *node.Options) { o.Config.Bitswap = false }},
		{"option", func(o *node.Options) { o.NoBitswap = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := repoNode(t, nil, tc.set)
			for _, p := range a.Host().Mux().Protocols() {
				require.NotContains(t, string(p), "bitswap")
			}
			h := loopbackHost(t)
			connectTo(t, h, a)
			_, err := h.NewStream(t.Context(), a.ID(), node.BitswapProtocols...)
			require.Error(t, err, "no Bitswap protocol is negotiated")
		})
	}
}

// A peer that asks for every block and never reads what it is sent holds only its share of the
// node's senders (OutstandingBytes of blocks): another peer still fetches a file meanwhile, and
// the node still closes at once.
func TestBitswapStalledPeerTakesOnlyItsShare(t *testing.T) {
	a := repoNode(t, nil)
	_, data := writeFile(t, 24<<20, 10)
	f, err := a.Store().Add(t.Context(), bytes.NewReader(data), "big", store.AddOptions{})
	require.NoError(t, err)
	var leaves []cid.Cid
	for off := 0; off < len(data); off += 1 << 20 {
		leaves = append(leaves, leafOf(t, data[off:off+1<<20]))
	}

	// The stalled peer takes the streams the node sends blocks on and never reads them.
	stalled := loopbackHost(t)
	release := make(chan struct{})
	var mu sync.Mutex
	taken := 0
	for _, p := range node.BitswapProtocols {
		stalled.SetStreamHandler(p, func(s network.Stream) {
			mu.Lock()
			taken++
			mu.Unlock()
			<-release
			_ = s.Reset()
		})
	}
	connectTo(t, stalled, a)
	s, err := stalled.NewStream(t.Context(), a.ID(), bsnet.ProtocolBitswap)
	require.NoError(t, err)
	m := bsmsg.New(true)
	for i, c := range leaves {
		m.AddEntry(c, int32(len(leaves)-i), pb.Message_Wantlist_Block, true)
	}
	require.NoError(t, m.ToNetV1(s))
	share := node.DefaultBitswapLimits().OutstandingBytes / (1 << 20)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return taken >= share }, 10*time.Second, 10*time.Millisecond,
		"the node sends the stalled peer its share")

	c := newIPFSClient(t, a)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got, err := c.cat(ctx, f.Root)
	require.NoError(t, err, "another peer is served while one stalls")
	require.True(t, bytes.Equal(data, got))
	mu.Lock()
	require.LessOrEqual(t, taken, share, "the stalled peer never held more than its share")
	mu.Unlock()

	// Close does not wait for the stalled writes (up to two minutes each in boxo).
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Close waits for a peer that does not read")
	}
	close(release)
}
