package node_test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
)

// BenchmarkFetchFromBitswap1GiB has our fetch (Node.Fetch into a file, every block verified)
// get a 1 GiB file from one source:
//
//   - boxo: an IPFS node as far as Bitswap goes, boxo's Bitswap server with its defaults on a
//     default libp2p host, over an in-memory blockstore the file was imported into by boxo's
//     importer; our fetch asks it over Bitswap;
//   - peer: one of our nodes holding the same file, asked over our transfer protocol;
//   - boxo-client-from-boxo: for comparison, boxo's Bitswap client from the same server.
//
// BITSWAP_BENCH_MIB sets another size.
//
//	go test -run '^$' -bench FetchFromBitswap1GiB -benchtime 1x ./node/
func BenchmarkFetchFromBitswap1GiB(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("BITSWAP_BENCH_MIB"); s != "" {
		mib, err := strconv.Atoi(s)
		require.NoError(b, err)
		size = int64(mib) << 20
	}
	content := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{12}), size) }
	srv := newIPFSServer(b, nil)
	params := helpers.DagBuilderParams{Maxlinks: 1024, RawLeaves: true, CidBuilder: builder, Dagserv: srv.dag}
	db, err := params.New(chunker.NewSizeSplitter(content(), 1<<20))
	require.NoError(b, err)
	nd, err := balanced.Layout(db)
	require.NoError(b, err)
	root := nd.Cid()

	for _, tc := range []struct {
		name   string
		source func(b *testing.B, n *node.Node) string // links n to the source; its peer ID
	}{
		{"boxo", func(b *testing.B, n *node.Node) string {
			srv.link(b, n)
			return srv.h.ID().String()
		}},
		{"peer", func(b *testing.B, n *node.Node) string {
			a := repoNode(b, nil)
			f, err := a.Store().Add(b.Context(), content(), "big.bin", store.AddOptions{})
			require.NoError(b, err)
			require.Equal(b, root, f.Root)
			connectTo(b, n.Host(), a)
			return a.ID().String()
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for range b.N {
				fetchFromOne(b, root, size, tc.source)
			}
		})
	}
	// For comparison: boxo's own client from the same server, reading the file as `ipfs cat`
	// does (into nothing: it writes no file).
	b.Run("boxo-client-from-boxo", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for range b.N {
			fetchOnce(b, peer.AddrInfo{ID: srv.h.ID(), Addrs: srv.h.Addrs()}, root, int(size))
		}
	})
}

// fetchFromOne fetches root into a new node from the one source that link sets up, timing only
// the fetch, and checks that every block came from that source.
func fetchFromOne(b *testing.B, root cid.Cid, size int64, link func(*testing.B, *node.Node) string) {
	b.StopTimer()
	n := repoNode(b, nil)
	from := link(b, n)
	out := filepath.Join(b.TempDir(), "got.bin")
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	b.StartTimer()
	res, err := n.Fetch(ctx, root, node.FetchOptions{Output: out})
	b.StopTimer()
	require.NoError(b, err)
	st, err := os.Stat(out)
	require.NoError(b, err)
	require.Equal(b, size, st.Size())
	for p, ps := range res.Stats.Peers {
		if p.String() == from {
			require.Equal(b, res.Stats.Blocks, ps.Blocks, "every block from the source")
		}
	}
	require.NoError(b, os.Remove(out))
	b.StartTimer()
}
