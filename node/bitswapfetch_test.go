package node_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
	"peer/transfer"
)

// ipfsServer is an IPFS node as far as Bitswap goes: a plain libp2p host running boxo's Bitswap
// server over a boxo blockstore, the DAGs in it built by boxo's importer. It does not speak our
// transfer protocol.
type ipfsServer struct {
	h   host.Host
	bs  blockstore.Blockstore
	dag ipld.DAGService
}

func newIPFSServer(tb testing.TB, wrap func(blockstore.Blockstore) blockstore.Blockstore) *ipfsServer {
	tb.Helper()
	h := loopbackHost(tb)
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	served := bs
	if wrap != nil {
		served = wrap(bs)
	}
	net := bsnet.NewFromIpfsHost(h)
	srv := server.New(context.Background(), net, served)
	net.Start(srv)
	tb.Cleanup(func() {
		net.Stop()
		srv.Close()
	})
	return &ipfsServer{h: h, bs: bs, dag: merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))}
}

// builder is the profile our store builds with: CIDv1, sha2-256, raw leaves, 1 MiB chunks.
var builder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}

// addFile imports data with boxo's balanced importer as the unixfs-v1-2025 profile says (raw
// leaves, 1 MiB chunks, 1024 links per node), as `ipfs add --cid-version=1` under it does.
func (s *ipfsServer) addFile(tb testing.TB, data []byte) ipld.Node {
	tb.Helper()
	params := helpers.DagBuilderParams{Maxlinks: 1024, RawLeaves: true, CidBuilder: builder, Dagserv: s.dag}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), 1<<20))
	require.NoError(tb, err)
	nd, err := balanced.Layout(db)
	require.NoError(tb, err)
	return nd
}

// addTree imports the folder at dir (files and folders) with boxo's importer and directories.
func (s *ipfsServer) addTree(tb testing.TB, dir string) ipld.Node {
	tb.Helper()
	d, err := uio.NewDirectory(s.dag, uio.WithCidBuilder(builder))
	require.NoError(tb, err)
	entries, err := os.ReadDir(dir)
	require.NoError(tb, err)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var child ipld.Node
		if e.IsDir() {
			child = s.addTree(tb, p)
		} else {
			b, err := os.ReadFile(p)
			require.NoError(tb, err)
			child = s.addFile(tb, b)
		}
		require.NoError(tb, d.AddChild(tb.Context(), e.Name(), child))
	}
	nd, err := d.GetNode()
	require.NoError(tb, err)
	require.NoError(tb, s.dag.Add(tb.Context(), nd))
	return nd
}

// link connects the server to n and waits until n knows, from identify, that it speaks Bitswap.
func (s *ipfsServer) link(tb testing.TB, n *node.Node) {
	tb.Helper()
	connectTo(tb, s.h, n)
	require.Eventually(tb, func() bool {
		ok, _ := n.Host().Peerstore().SupportsProtocols(s.h.ID(), node.BitswapProtocols...)
		return len(ok) > 0
	}, 10*time.Second, 10*time.Millisecond)
}

// Our fetch gets a file and a folder from an IPFS node that speaks only Bitswap, byte for
// byte, with every block from it: the file named as that node's importer names it.
func TestFetchFromABitswapOnlyPeer(t *testing.T) {
	srv := newIPFSServer(t, nil)
	_, data := writeFile(t, 5<<20+777, 21)
	file := srv.addFile(t, data)
	src := filepath.Join(t.TempDir(), "tree")
	for p, b := range map[string][]byte{"a/b/deep.txt": []byte("deep"), "top.txt": []byte("top"), "a/big.bin": data[:3<<20+5]} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, p), b, 0o644))
	}
	tree := srv.addTree(t, src)

	n := repoNode(t, nil)
	srv.link(t, n)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	out := filepath.Join(t.TempDir(), "file.bin")
	res, err := n.Fetch(ctx, file.Cid(), node.FetchOptions{Output: out})
	require.NoError(t, err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "byte for byte")
	require.Equal(t, store.Complete, res.File.State)
	ps := res.Stats.Peers[srv.h.ID()]
	require.True(t, ps.Bitswap, "asked over Bitswap")
	require.Equal(t, res.Stats.Blocks, ps.Blocks, "every block came from the Bitswap peer")
	require.Equal(t, 7, ps.Blocks, "6 leaves and the root")

	// peer cat streams it from the Bitswap peer too.
	m := repoNode(t, nil)
	srv.link(t, m)
	rc, size, err := m.Cat(ctx, file.Cid(), 0)
	require.NoError(t, err)
	require.EqualValues(t, len(data), size)
	streamed, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.True(t, bytes.Equal(data, streamed), "cat, byte for byte")

	outTree := filepath.Join(t.TempDir(), "tree")
	res, err = n.Fetch(ctx, tree.Cid(), node.FetchOptions{Output: outTree})
	require.NoError(t, err)
	requireSameTree(t, src, outTree)
	require.True(t, res.File.Dir)
	require.True(t, n.Store().ServeHas(tree.Cid()), "the folder is held and served")
}

// One fetch with one source of each kind, one of our nodes and one IPFS node speaking Bitswap,
// takes verified blocks from both.
func TestFetchUsesOurPeersAndBitswapPeersAtOnce(t *testing.T) {
	_, data := writeFile(t, 48<<20, 22)
	srv := newIPFSServer(t, nil)
	file := srv.addFile(t, data)
	a := repoNode(t, nil)
	added, err := a.Store().Add(t.Context(), bytes.NewReader(data), "data", store.AddOptions{})
	require.NoError(t, err)
	require.Equal(t, file.Cid(), added.Root, "the same CID from both importers")

	// b's fetch is held back to a rate at which both sources are asked long before the end.
	b := repoNode(t, a, func(o *node.Options) { o.Config.DownloadLimit = 64 << 20 })
	srv.link(t, b)
	require.Eventually(t, func() bool {
		ok, _ := b.Host().Peerstore().SupportsProtocols(a.ID(), transfer.ID)
		return len(ok) > 0
	}, 10*time.Second, 10*time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "got.bin")
	res, err := b.Fetch(ctx, added.Root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	ours, theirs := res.Stats.Peers[a.ID()], res.Stats.Peers[srv.h.ID()]
	require.False(t, ours.Bitswap, "our node is asked over our protocol")
	require.True(t, theirs.Bitswap, "the IPFS node over Bitswap")
	require.Positive(t, ours.Blocks, "our node delivered blocks")
	require.Positive(t, theirs.Blocks, "the Bitswap peer delivered blocks")
	require.Equal(t, res.Stats.Blocks, ours.Blocks+theirs.Blocks)
}

// lyingStore answers every raw leaf with other bytes, as a broken or hostile IPFS node would.
type lyingStore struct{ blockstore.Blockstore }

func (s lyingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := s.Blockstore.Get(ctx, c)
	if err != nil || c.Type() != cid.Raw {
		return b, err
	}
	bad := slices.Clone(b.RawData())
	bad[0] ^= 0xff
	return blocks.NewBlockWithCid(bad, c)
}

// A Bitswap peer that sends a wrong block is dropped from the fetch and banned, as one of ours
// would be, and the fetch completes from the other source.
func TestBitswapPeerSendingABadBlockIsBanned(t *testing.T) {
	_, data := writeFile(t, 16<<20, 23)
	liar := newIPFSServer(t, func(bs blockstore.Blockstore) blockstore.Blockstore { return lyingStore{bs} })
	root := liar.addFile(t, data).Cid()
	a := repoNode(t, nil)
	added, err := a.Store().Add(t.Context(), bytes.NewReader(data), "data", store.AddOptions{})
	require.NoError(t, err)
	require.Equal(t, root, added.Root)

	var mu sync.Mutex
	var bans []error
	// The fetch is held back (8 MiB/s) so that the liar is asked for leaves, not left idle.
	b := repoNode(t, a, func(o *node.Options) {
		o.Config.DownloadLimit = 8 << 20
		o.Transfer = append(o.Transfer, transfer.WithMisbehaviour(func(p peer.ID, err error) {
			if p == liar.h.ID() {
				mu.Lock()
				bans = append(bans, err)
				mu.Unlock()
			}
		}))
	})
	liar.link(t, b)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "got.bin")
	res, err := b.Fetch(ctx, root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	ps := res.Stats.Peers[liar.h.ID()]
	require.True(t, ps.Bitswap)
	require.Positive(t, ps.Bad, "the bad block is counted against it")
	require.LessOrEqual(t, ps.Blocks, 1, "nothing of it was delivered but the root, if that")
	require.ErrorIs(t, ps.Dropped, transfer.ErrBadBlock, "dropped for it")
	require.Positive(t, res.Stats.BadBlocks)
	require.Equal(t, res.Stats.Blocks-ps.Blocks, res.Stats.Peers[a.ID()].Blocks, "the rest came from the honest node")
	mu.Lock()
	require.Len(t, bans, 1, "banned once")
	require.ErrorIs(t, bans[0], transfer.ErrBadBlock)
	mu.Unlock()
}
