package node_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peer/node"
)

// BenchmarkBitswapServe1GiB has boxo's Bitswap client (on a default libp2p host, reading the file
// with a DAG reader over one session, as `ipfs cat` does) fetch a 1 GiB file from:
//
//   - peer: our node, the file shared in place (its leaves read from the file, its inner nodes
//     from the repo), through the store's serving rules;
//   - boxo: a plain boxo Bitswap server with boxo's defaults, on a default libp2p host, over an
//     in-memory blockstore holding the same blocks;
//   - boxo-node-host: the same server and blockstore on a node's host (its TLS, muxer and
//     resource manager), Bitswap of its own off.
//
// BITSWAP_BENCH_MIB sets another size.
//
//	go test -run '^$' -bench BitswapServe1GiB -benchtime 1x ./node/
func BenchmarkBitswapServe1GiB(b *testing.B) {
	size := 1 << 30
	if s := os.Getenv("BITSWAP_BENCH_MIB"); s != "" {
		mib, err := strconv.Atoi(s)
		require.NoError(b, err)
		size = mib << 20
	}
	a := repoNode(b, nil)
	path, _ := writeFile(b, size, 11)
	f := addInPlace(b, a, path)

	// The same blocks, in memory.
	mem := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	for _, c := range a.Store().Served() {
		data, err := a.Store().GetBlock(b.Context(), c)
		require.NoError(b, err)
		blk, err := blocks.NewBlockWithCid(data, c)
		require.NoError(b, err)
		require.NoError(b, mem.Put(b.Context(), blk))
	}
	plainOn := func(b *testing.B, h host.Host, opts ...server.Option) peer.AddrInfo {
		net := bsnet.NewFromIpfsHost(h)
		srv := server.New(context.Background(), net, mem, opts...)
		net.Start(srv)
		b.Cleanup(func() {
			net.Stop()
			srv.Close()
			_ = h.Close()
		})
		return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	}
	plain := func(b *testing.B, opts ...server.Option) peer.AddrInfo {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		require.NoError(b, err)
		return plainOn(b, h, opts...)
	}
	for _, tc := range []struct {
		name string
		to   func(b *testing.B) peer.AddrInfo
	}{
		{"peer", func(*testing.B) peer.AddrInfo { return peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()} }},
		{"boxo", func(b *testing.B) peer.AddrInfo { return plain(b) }},
		{"boxo-node-host", func(b *testing.B) peer.AddrInfo {
			n := repoNode(b, nil, func(o *node.Options) { o.NoBitswap = true })
			return plainOn(b, n.Host())
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			to := tc.to(b)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				fetchOnce(b, to, f.Root, size)
			}
		})
	}
}

// fetchOnce fetches root of size bytes from to with a new client, timing only the fetch.
func fetchOnce(b *testing.B, to peer.AddrInfo, root cid.Cid, size int) {
	b.StopTimer()
	c := dialIPFSClient(b, to)
	defer func() {
		b.StopTimer()
		c.close()
		b.StartTimer()
	}()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	b.StartTimer()
	n, err := c.catTo(ctx, root, io.Discard)
	require.NoError(b, err)
	require.Equal(b, int64(size), n)
}
