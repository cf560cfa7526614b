package transfer_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
	"peer/transfer"
)

// funcStore is a read-only boxo blockstore whose blocks come from get.
type funcStore struct {
	get   func(c cid.Cid) ([]byte, bool)
	onGet func(c cid.Cid) // nil: nothing
}

var _ blockstore.Blockstore = funcStore{}

func (s funcStore) Has(_ context.Context, c cid.Cid) (bool, error) {
	_, ok := s.get(c)
	return ok, nil
}

func (s funcStore) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	if s.onGet != nil {
		s.onGet(c)
	}
	b, ok := s.get(c)
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return blocks.NewBlockWithCid(b, c)
}

func (s funcStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	b, ok := s.get(c)
	if !ok {
		return 0, ipld.ErrNotFound{Cid: c}
	}
	return len(b), nil
}

var errReadOnly = errors.New("read-only")

func (funcStore) Put(context.Context, blocks.Block) error       { return errReadOnly }
func (funcStore) PutMany(context.Context, []blocks.Block) error { return errReadOnly }
func (funcStore) DeleteBlock(context.Context, cid.Cid) error    { return errReadOnly }
func (funcStore) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	ch := make(chan cid.Cid)
	close(ch)
	return ch, nil
}

// bitswapSeeder is an IPFS node as far as Bitswap goes: boxo's Bitswap server over bs on a host
// that does not speak our protocol.
func bitswapSeeder(t testing.TB, bs blockstore.Blockstore) host.Host {
	t.Helper()
	h := newHost(t)
	net := bsnet.NewFromIpfsHost(h)
	srv := server.New(context.Background(), net, bs)
	net.Start(srv)
	t.Cleanup(func() {
		net.Stop()
		srv.Close()
	})
	return h
}

// bitswapFetcher is a Transfer that asks peers that do not speak ID over Bitswap, connected to
// the seeders.
func bitswapFetcher(t testing.TB, seeders []host.Host, opts ...transfer.Option) (*transfer.Transfer, []peer.ID) {
	t.Helper()
	h := newHost(t)
	net := bsnet.NewFromIpfsHost(h)
	bsw := transfer.NewBitswap(net)
	net.Start(bsw)
	t.Cleanup(net.Stop)
	tr := transfer.New(h, nil, append([]transfer.Option{transfer.WithBitswap(bsw)}, opts...)...)
	require.NoError(t, tr.Start())
	t.Cleanup(func() { _ = tr.Close() })
	var ids []peer.ID
	for _, s := range seeders {
		connect(t, h, s)
		ids = append(ids, s.ID())
	}
	return tr, ids
}

// A Transfer with Bitswap fetches a whole DAG from a boxo Bitswap server alone, every block
// once, and says the peer was a Bitswap source.
func TestFetchFromBoxoBitswapServer(t *testing.T) {
	d := buildDAG(t, 6<<20+333, 256<<10, 16, 41) // inner nodes on two levels
	s := bitswapSeeder(t, funcStore{get: func(c cid.Cid) ([]byte, bool) {
		b, err := d.store.Get(context.Background(), c)
		return b, err == nil
	}})
	tr, ids := bitswapFetcher(t, []host.Host{s})
	got := newCollector()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := tr.Fetch(ctx, transfer.Request{Root: d.root, Providers: ids, Expand: expand, Deliver: got.deliver})
	require.NoError(t, err)
	requireComplete(t, d, got)
	ps := st.Peers[s.ID()]
	require.True(t, ps.Bitswap)
	require.Equal(t, d.store.Len(), ps.Blocks)
	require.Zero(t, st.DuplicateBytes)
}

// Without Bitswap, a provider that does not speak ID is dropped and the fetch finds nobody.
func TestBitswapSourceNeedsWithBitswap(t *testing.T) {
	d := buildDAG(t, 1<<20, 256<<10, 16, 42)
	s := bitswapSeeder(t, funcStore{get: func(c cid.Cid) ([]byte, bool) {
		b, err := d.store.Get(context.Background(), c)
		return b, err == nil
	}})
	h, tr, ids := newFetcher(t, nil, transfer.WithNoProvidersTimeout(200*time.Millisecond))
	connect(t, h, s)
	ids = append(ids, s.ID())
	_, err := tr.Fetch(t.Context(), transfer.Request{Root: d.root, Providers: ids, Expand: expand, Deliver: newCollector().deliver})
	require.ErrorIs(t, err, transfer.ErrNoProviders)
}

// The frontier bound holds with a Bitswap source: a DAG bomb served over Bitswap (every inner
// node sent, every leaf DONT_HAVE) unfolds a few inner nodes at a time, and the fetch ends with
// ErrNoProviders.
func TestBitswapDAGBombUnfoldsWithinABoundedFrontier(t *testing.T) {
	const fanout = 256
	b := newBomb(t, fanout)
	var asked atomic.Int64
	s := bitswapSeeder(t, funcStore{
		get: func(c cid.Cid) ([]byte, bool) {
			if c.Equals(b.root) {
				return b.rootB, true
			}
			if i, ok := b.inner[c]; ok {
				return b.innerBlock(t, i), true
			}
			return nil, false
		},
		onGet: func(c cid.Cid) {
			if _, ok := b.inner[c]; ok {
				asked.Add(1)
			}
		},
	})
	// A wide window: the thousands of DONT_HAVEs come back in fewer round trips.
	tr, ids := bitswapFetcher(t, []host.Host{s}, transfer.WithNoProvidersTimeout(500*time.Millisecond), transfer.WithWindow(64<<20, 64<<20))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	most := 0
	_, err := tr.Fetch(ctx, transfer.Request{
		Root: b.root, Providers: ids, Expand: unixfsExpand, MaxDepth: unixfs.MaxDepth,
		Deliver:  func(cid.Cid, []byte) error { return nil },
		Progress: func(p transfer.Progress) { most = max(most, p.Blocks) },
	})
	require.ErrorIs(t, err, transfer.ErrNoProviders)
	require.LessOrEqual(t, asked.Load(), int64(96), "inner nodes asked for, of %d", fanout)
	require.Less(t, most, 20_000, "blocks the fetch knew at once, of %d", 1+fanout+fanout*fanout)
}

// BenchmarkFetchFromBitswap fetches 256 MiB in 1 MiB chunks from one boxo Bitswap server (its
// defaults, blocks in memory) over TCP + TLS + yamux on loopback, into nothing: the Bitswap
// source alone, as BenchmarkFetchOneSource measures our protocol. BITSWAP_BENCH_MIB sets
// another size.
//
//	go test -run '^$' -bench FetchFromBitswap -benchtime 3x ./transfer/
func BenchmarkFetchFromBitswap(b *testing.B) {
	size := 256 << 20
	if s := os.Getenv("BITSWAP_BENCH_MIB"); s != "" {
		mib, err := strconv.Atoi(s)
		require.NoError(b, err)
		size = mib << 20
	}
	d := buildDAG(b, size, 1<<20, 1024, 102)
	s := bitswapSeeder(b, funcStore{get: func(c cid.Cid) ([]byte, bool) {
		blk, err := d.store.Get(context.Background(), c)
		return blk, err == nil
	}})
	tr, ids := bitswapFetcher(b, []host.Host{s})
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		st, err := tr.Fetch(b.Context(), transfer.Request{
			Root: d.root, Providers: ids, Expand: expand,
			Deliver: func(cid.Cid, []byte) error { return nil },
		})
		if err != nil {
			b.Fatal(err)
		}
		if !st.Peers[s.ID()].Bitswap {
			b.Fatal("not fetched over Bitswap")
		}
	}
}

// A Deliver that waits longer than the stall timeout (a disk that stops for a while) is the
// fetch's own slowness, not its peer's: the peer is kept, over our protocol and over Bitswap,
// and while the fetch waits it asks for no more than its window. A Bitswap server sends each
// message on a stream of its own, so unless one message at a time is taken, blocks pile up in
// memory, and once the peer's streams are refused the server drops what it could not send.
func TestSlowDeliverKeepsItsPeerAndAsksNoMore(t *testing.T) {
	d := buildDAG(t, 64<<20, 1<<20, 1024, 104)
	get := funcStore{get: func(c cid.Cid) ([]byte, bool) {
		blk, err := d.store.Get(context.Background(), c)
		return blk, err == nil
	}}
	// A window wider than what waits between the network and Deliver: requests are still out
	// while Deliver waits.
	const window = 16 << 20
	opts := []transfer.Option{transfer.WithStallTimeout(300 * time.Millisecond), transfer.WithWindow(window, window)}
	for _, tc := range []struct {
		name  string
		fetch func(t *testing.T) (*transfer.Transfer, []peer.ID)
	}{
		{"ours", func(t *testing.T) (*transfer.Transfer, []peer.ID) {
			_, tr, ids := newFetcher(t, []seeder{newSeeder(t, d.store)}, opts...)
			return tr, ids
		}},
		{"bitswap", func(t *testing.T) (*transfer.Transfer, []peer.ID) {
			return bitswapFetcher(t, []host.Host{bitswapSeeder(t, get)}, opts...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, ids := tc.fetch(t)
			var n int
			var ahead atomic.Int64 // most bytes received and not yet delivered
			st, err := tr.Fetch(t.Context(), transfer.Request{
				Root: d.root, Providers: ids, Expand: expand,
				Deliver: func(cid.Cid, []byte) error {
					if n++; n == 8 {
						time.Sleep(1500 * time.Millisecond) // five stall timeouts
					}
					return nil
				},
				Progress: func(p transfer.Progress) {
					if a := p.Bytes - p.BytesDone; a > ahead.Load() {
						ahead.Store(a)
					}
				},
			})
			require.NoError(t, err)
			require.NoError(t, st.Peers[ids[0]].Dropped)
			require.Equal(t, d.store.Len(), st.Blocks)
			// The window and the blocks between the network and Deliver (a few).
			require.LessOrEqual(t, ahead.Load(), int64(window+8<<20), "bytes received ahead of Deliver")
		})
	}
}

// twiceServer answers every want-block with the block, twice, as a Bitswap server does when
// two sessions of one peer ask for the same block one after the other.
type twiceServer struct {
	net  bsnetwork.BitSwapNetwork
	get  func(c cid.Cid) ([]byte, bool)
	sent atomic.Int64
}

func (s *twiceServer) ReceiveMessage(_ context.Context, p peer.ID, m bsmsg.BitSwapMessage) {
	for _, e := range m.Wantlist() {
		if e.Cancel {
			continue
		}
		data, ok := s.get(e.Cid)
		if !ok {
			continue
		}
		blk, err := blocks.NewBlockWithCid(data, e.Cid)
		if err != nil {
			continue
		}
		go func() {
			for range 2 {
				out := bsmsg.New(false)
				out.AddBlock(blk)
				if s.net.SendMessage(context.Background(), p, out) == nil {
					s.sent.Add(1)
				}
			}
		}()
	}
}
func (*twiceServer) ReceiveError(error)       {}
func (*twiceServer) PeerConnected(peer.ID)    {}
func (*twiceServer) PeerDisconnected(peer.ID) {}

// A second copy of a block asked for is not a bad block: the peer that sends it is kept and
// not banned.
func TestBitswapSecondCopyIsNotBad(t *testing.T) {
	d := buildDAG(t, 4<<20, 256<<10, 16, 43)
	h := newHost(t)
	srv := &twiceServer{net: bsnet.NewFromIpfsHost(h), get: func(c cid.Cid) ([]byte, bool) {
		b, err := d.store.Get(context.Background(), c)
		return b, err == nil
	}}
	srv.net.Start(srv)
	t.Cleanup(srv.net.Stop)
	var bad atomic.Int64
	tr, ids := bitswapFetcher(t, []host.Host{h}, transfer.WithMisbehaviour(func(peer.ID, error) { bad.Add(1) }))
	got := newCollector()
	st, err := tr.Fetch(t.Context(), transfer.Request{Root: d.root, Providers: ids, Expand: expand, Deliver: got.deliver})
	require.NoError(t, err)
	requireComplete(t, d, got)
	// Wait for the second copies to have come, then check nobody was punished for them.
	require.Eventually(t, func() bool { return srv.sent.Load() == int64(2*d.store.Len()) }, 10*time.Second, 10*time.Millisecond)
	_, err = tr.Fetch(t.Context(), transfer.Request{Root: d.root, Providers: ids, Expand: expand, Deliver: newCollector().deliver})
	require.NoError(t, err, "the peer is still asked")
	require.Zero(t, bad.Load(), "nobody is punished for a second copy")
	require.False(t, tr.Banned(h.ID()))
	require.NoError(t, st.Peers[h.ID()].Dropped)
}
