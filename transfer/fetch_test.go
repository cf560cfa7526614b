package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptest "github.com/libp2p/go-libp2p/core/test"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/internal/nettest"
	"peer/transfer"
	"peer/transfer/wire"
)

func request(d dag, providers []peer.ID, got *collector) transfer.Request {
	return transfer.Request{Root: d.root, Providers: providers, Expand: expand, Deliver: got.deliver}
}

func TestFetchOneSource(t *testing.T) {
	tests := []struct {
		name                  string
		size, chunk, maxLinks int
	}{
		{"single leaf", 1000, 16 << 10, 1024},
		{"one level", 4 << 20, 16 << 10, 1024},
		{"deep", 1 << 20, 4 << 10, 8},
		{"max size blocks", 5 << 20, 2 << 20, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := buildDAG(t, tt.size, tt.chunk, tt.maxLinks, 1)
			src := newSeeder(t, d.store)
			_, tr, ids := newFetcher(t, []seeder{src})
			got := newCollector()
			var progress atomic.Int32
			var last atomic.Pointer[transfer.Progress]
			req := request(d, ids, got)
			req.Progress = func(p transfer.Progress) { progress.Add(1); last.Store(&p) }
			st, err := tr.Fetch(t.Context(), req)
			require.NoError(t, err)
			requireComplete(t, d, got)
			require.Equal(t, d.store.Len(), st.Blocks)
			require.Zero(t, st.DuplicateBytes)
			require.Zero(t, st.BadBlocks)
			require.Equal(t, st.Bytes, st.Peers[src.h.ID()].Bytes)
			require.Equal(t, int64(d.store.Len()), src.t.ServerStats().Blocks)
			require.Positive(t, progress.Load())
			p := last.Load()
			require.Equal(t, d.store.Len(), p.Blocks)
			require.Equal(t, d.store.Len(), p.BlocksDone)
			require.Equal(t, st.Bytes, p.BytesDone)
			require.Equal(t, st.Received, p.Bytes)
		})
	}
}

func TestRepeatedBlocksDeliveredOnce(t *testing.T) {
	d := importDAG(t, make([]byte, 1<<20), 16<<10, 1024) // 64 identical zero chunks
	src := newSeeder(t, d.store)
	_, tr, ids := newFetcher(t, []seeder{src})
	got := newCollector()
	_, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)
	require.Equal(t, 2, d.store.Len())
}

func TestFetchFourRateLimited(t *testing.T) {
	const rate = 4 << 20
	d := buildDAG(t, 4<<20, 16<<10, 1024, 2)

	fetch := func(n int) (time.Duration, []seeder, transfer.Stats) {
		var srcs []seeder
		for range n {
			srcs = append(srcs, newSeeder(t, d.store, transfer.WithRateLimit(rate)))
		}
		_, tr, ids := newFetcher(t, srcs)
		got := newCollector()
		start := time.Now()
		st, err := tr.Fetch(t.Context(), request(d, ids, got))
		require.NoError(t, err)
		requireComplete(t, d, got)
		return time.Since(start), srcs, st
	}
	one, _, _ := fetch(1)
	four, srcs, st := fetch(4)
	t.Logf("one source: %v, four sources: %v, duplicate bytes %d of %d", one, four, st.DuplicateBytes, st.Received)
	// How much faster four are is a benchmark's business (BenchmarkFetchFourRateLimited); here every
	// source serves a share and none carries most of the fetch (a loaded machine skews the
	// shares, so the bound is loose: three quarters, where an even split is one).
	for _, s := range srcs {
		served := s.t.ServerStats().Blocks
		require.Positive(t, served, "every source serves a share")
		require.LessOrEqual(t, served, int64(st.Blocks)*3/4, "no source serves three quarters of the blocks")
	}
}

func TestCorruptSourceIsDroppedAndReported(t *testing.T) {
	d := buildDAG(t, 2<<20, 16<<10, 1024, 3)
	bad := newSeeder(t, corruptStore{d.store})
	good1 := newSeeder(t, d.store, transfer.WithRateLimit(4<<20))
	good2 := newSeeder(t, d.store, transfer.WithRateLimit(4<<20))

	var mu sync.Mutex
	reported := map[peer.ID]error{}
	_, tr, ids := newFetcher(t, []seeder{bad, good1, good2}, transfer.WithMisbehaviour(func(p peer.ID, err error) {
		mu.Lock()
		reported[p] = err
		mu.Unlock()
	}))
	got := newCollector()
	st, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)

	mu.Lock()
	require.ErrorIs(t, reported[bad.h.ID()], transfer.ErrBadBlock)
	require.Len(t, reported, 1)
	mu.Unlock()
	require.Positive(t, st.BadBlocks)
	require.ErrorIs(t, st.Peers[bad.h.ID()].Dropped, transfer.ErrBadBlock)
	require.True(t, tr.Banned(bad.h.ID()))

	// A later fetch avoids the peer.
	before := bad.t.ServerStats().Wants
	got2 := newCollector()
	_, err = tr.Fetch(t.Context(), request(d, ids, got2))
	require.NoError(t, err)
	requireComplete(t, d, got2)
	require.Equal(t, before, bad.t.ServerStats().Wants)
}

func TestStallingSourceWorkMovesToOthers(t *testing.T) {
	// The file outlasts one window, so the staller gets work whichever
	// stream opens first.
	d := buildDAG(t, 8<<20, 16<<10, 1024, 4)
	stall := newStaller(t)
	good := newSeeder(t, d.store, transfer.WithRateLimit(16<<20))
	_, tr, ids := newFetcher(t, []seeder{stall.seeder, good}, transfer.WithStallTimeout(300*time.Millisecond))
	got := newCollector()
	st, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)
	require.Zero(t, st.Peers[stall.h.ID()].Blocks)
	require.Positive(t, stall.wants.Load(), "the staller was given work")
	require.False(t, tr.Banned(stall.h.ID()), "a slow peer is not a bad peer")
}

func TestStalledPeerIsDropped(t *testing.T) {
	d := buildDAG(t, 256<<10, 16<<10, 1024, 4)
	stall := newStaller(t)
	_, tr, ids := newFetcher(t, []seeder{stall.seeder}, transfer.WithStallTimeout(200*time.Millisecond))
	start := time.Now()
	st, err := tr.Fetch(t.Context(), request(d, ids, newCollector()))
	require.ErrorIs(t, err, transfer.ErrNoProviders)
	require.ErrorIs(t, err, transfer.ErrStalled)
	require.ErrorIs(t, st.Peers[stall.h.ID()].Dropped, transfer.ErrStalled)
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
}

func TestSourceDisappearsMidFetch(t *testing.T) {
	d := buildDAG(t, 4<<20, 16<<10, 1024, 5)
	a := newSeeder(t, d.store, transfer.WithRateLimit(4<<20))
	b := newSeeder(t, d.store, transfer.WithRateLimit(4<<20))
	_, tr, ids := newFetcher(t, []seeder{a, b})
	got := newCollector()
	var once sync.Once
	got.hook = func(n int) {
		if n == d.store.Len()/4 {
			once.Do(func() { go func() { _ = a.t.Close(); _ = a.h.Close() }() })
		}
	}
	st, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)
	require.Error(t, st.Peers[a.h.ID()].Dropped)
	require.Positive(t, st.Peers[a.h.ID()].Blocks)
	require.Positive(t, st.Peers[b.h.ID()].Blocks)
}

func TestResumeFetchesOnlyMissing(t *testing.T) {
	d := buildDAG(t, 4<<20, 16<<10, 1024, 6)
	src := newSeeder(t, d.store, transfer.WithRateLimit(4<<20))
	h, tr, ids := newFetcher(t, []seeder{src})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := newCollector()
	first.hook = func(n int) {
		if n == d.store.Len()/3 {
			cancel()
		}
	}
	_, err := tr.Fetch(ctx, request(d, ids, first))
	require.ErrorIs(t, err, context.Canceled)
	have := first.store.Len()
	require.Less(t, have, d.store.Len())
	require.GreaterOrEqual(t, have, d.store.Len()/3)

	// A seeder of its own for the second fetch, so that wants of the first still in flight when it
	// was canceled cannot be counted as asked again.
	src2 := newSeeder(t, d.store)
	connect(t, h, src2.h)
	second := newCollector()
	req := request(d, []peer.ID{src2.h.ID()}, second)
	req.Local = first.store
	st, err := tr.Fetch(t.Context(), req)
	require.NoError(t, err)
	asked := src2.t.ServerStats().Wants
	missing := int64(d.store.Len() - have)
	t.Logf("had %d of %d blocks; asked %d", have, d.store.Len(), asked)
	require.LessOrEqual(t, asked, missing)
	require.Equal(t, have, st.LocalBlocks)
	for c, b := range first.store.m {
		second.store.Put(c, b)
	}
	requireComplete(t, d, second)
}

func TestNoProviders(t *testing.T) {
	missing := cid.NewCidV1(cid.Raw, buildDAG(t, 10, 16, 2, 7).root.Hash())
	const timeout = 300 * time.Millisecond

	t.Run("providers lack the root", func(t *testing.T) {
		empty1 := newSeeder(t, newMemStore())
		empty2 := newSeeder(t, newMemStore())
		_, tr, ids := newFetcher(t, []seeder{empty1, empty2}, transfer.WithNoProvidersTimeout(timeout))
		start := time.Now()
		_, err := tr.Fetch(t.Context(), transfer.Request{Root: missing, Providers: ids, Expand: expand, Deliver: newCollector().deliver})
		require.ErrorIs(t, err, transfer.ErrNoProviders)
		require.Less(t, time.Since(start), timeout+5*time.Second)
		t.Log(err)
	})
	t.Run("find yields nobody", func(t *testing.T) {
		_, tr, _ := newFetcher(t, nil, transfer.WithNoProvidersTimeout(timeout))
		start := time.Now()
		_, err := tr.Fetch(t.Context(), transfer.Request{
			Root:    missing,
			Find:    func(ctx context.Context) <-chan peer.AddrInfo { return make(chan peer.AddrInfo) },
			Expand:  expand,
			Deliver: newCollector().deliver,
		})
		require.ErrorIs(t, err, transfer.ErrNoProviders)
		require.GreaterOrEqual(t, time.Since(start), timeout)
		require.Less(t, time.Since(start), timeout+5*time.Second)
	})
	t.Run("find brings a provider", func(t *testing.T) {
		d := buildDAG(t, 256<<10, 16<<10, 1024, 8)
		src := newSeeder(t, d.store)
		_, tr, _ := newFetcher(t, nil, transfer.WithNoProvidersTimeout(timeout))
		got := newCollector()
		_, err := tr.Fetch(t.Context(), transfer.Request{
			Root: d.root,
			Find: func(ctx context.Context) <-chan peer.AddrInfo {
				ch := make(chan peer.AddrInfo, 1)
				ch <- peer.AddrInfo{ID: src.h.ID(), Addrs: src.h.Addrs()}
				return ch
			},
			Expand:  expand,
			Deliver: got.deliver,
		})
		require.NoError(t, err)
		requireComplete(t, d, got)
	})
}

func TestDeliverErrorAbortsFetch(t *testing.T) {
	d := buildDAG(t, 1<<20, 16<<10, 1024, 9)
	src := newSeeder(t, d.store)
	_, tr, ids := newFetcher(t, []seeder{src})
	boom := errors.New("disk full")
	_, err := tr.Fetch(t.Context(), transfer.Request{Root: d.root, Providers: ids, Expand: expand,
		Deliver: func(cid.Cid, []byte) error { return boom }})
	require.ErrorIs(t, err, boom)
}

func TestCloseEndsFetch(t *testing.T) {
	d := buildDAG(t, 4<<20, 16<<10, 1024, 10)
	src := newSeeder(t, d.store, transfer.WithRateLimit(1<<20))
	_, tr, ids := newFetcher(t, []seeder{src})
	got := newCollector()
	got.hook = func(n int) {
		if n == 2 {
			go func() { _ = tr.Close() }()
		}
	}
	_, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.ErrorIs(t, err, transfer.ErrClosed)
	_, err = tr.Fetch(t.Context(), request(d, ids, got))
	require.ErrorIs(t, err, transfer.ErrClosed)
}

func TestInvalidOptions(t *testing.T) {
	h := newHost(t)
	for _, o := range []transfer.Option{
		transfer.WithWindow(0, 1),
		transfer.WithWindow(10, 5),
		transfer.WithRateLimit(-1),
		transfer.WithStallTimeout(0),
		transfer.WithMaxStreamsPerPeer(0),
		transfer.WithLogger(nil),
	} {
		tr := transfer.New(h, nil, o)
		require.Error(t, tr.Start())
		require.NoError(t, tr.Close())
	}
}

func identityCID(t *testing.T, data []byte) cid.Cid {
	h, err := multihash.Sum(data, multihash.IDENTITY, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, h)
}

func TestInlineAndInvalidLinks(t *testing.T) {
	leaf := buildDAG(t, 1000, 16<<10, 1024, 17)
	src := newSeeder(t, leaf.store)
	_, tr, ids := newFetcher(t, []seeder{src})

	t.Run("identity root needs no peer", func(t *testing.T) {
		got := newCollector()
		st, err := tr.Fetch(t.Context(), transfer.Request{Root: identityCID(t, []byte("hi")), Expand: expand, Deliver: got.deliver})
		require.NoError(t, err)
		require.Equal(t, 1, st.Blocks)
		require.Equal(t, []byte("hi"), mustGet(t, got.store, identityCID(t, []byte("hi"))))
	})
	t.Run("inline child", func(t *testing.T) {
		nd := merkledag.NodeWithData([]byte{8, 2})
		require.NoError(t, nd.AddRawLink("a", &ipld.Link{Cid: identityCID(t, []byte("inline"))}))
		require.NoError(t, nd.AddRawLink("b", &ipld.Link{Cid: leaf.root}))
		nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256})
		leaf.store.Put(nd.Cid(), nd.RawData())
		got := newCollector()
		st, err := tr.Fetch(t.Context(), transfer.Request{Root: nd.Cid(), Providers: ids, Expand: expand, Deliver: got.deliver})
		require.NoError(t, err)
		require.Equal(t, 3, st.Blocks)
	})
	t.Run("over-long link fails the fetch", func(t *testing.T) {
		nd := merkledag.NodeWithData([]byte{8, 2})
		require.NoError(t, nd.AddRawLink("a", &ipld.Link{Cid: identityCID(t, make([]byte, 300))}))
		nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256})
		leaf.store.Put(nd.Cid(), nd.RawData())
		_, err := tr.Fetch(t.Context(), transfer.Request{Root: nd.Cid(), Providers: ids, Expand: expand, Deliver: newCollector().deliver})
		require.ErrorContains(t, err, "invalid CID")
	})
}

func TestFasterPeerServesMore(t *testing.T) {
	d := buildDAG(t, 8<<20, 16<<10, 1024, 18)
	fast := newSeeder(t, d.store, transfer.WithRateLimit(32<<20))
	slow := newSeeder(t, d.store, transfer.WithRateLimit(256<<10))
	_, tr, ids := newFetcher(t, []seeder{slow, fast})
	got := newCollector()
	st, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)
	f, s := st.Peers[fast.h.ID()], st.Peers[slow.h.ID()]
	t.Logf("fast %d bytes, slow %d bytes, duplicates %d, took %v", f.Bytes, s.Bytes, st.DuplicateBytes, st.Duration)
	require.Greater(t, f.Bytes, 2*s.Bytes)
	// Past its 2 MiB burst, the rest of the slow peer's first 4 MiB window
	// would take 8 s: the fast peer must have taken that work over.
	require.Less(t, st.Duration, 4*time.Second)
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	d := buildDAG(t, 2<<20, 16<<10, 1024, 19)
	src := newSeeder(t, d.store, transfer.WithRateLimit(1<<20))
	_, tr, ids := newFetcher(t, []seeder{src})
	ctx, cancel := context.WithCancel(t.Context())
	got := newCollector()
	got.hook = func(n int) {
		if n == 10 {
			cancel()
		}
	}
	_, err := tr.Fetch(ctx, request(d, ids, got))
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, tr.Close())
	require.NoError(t, src.t.Close())
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		return !bytes.Contains(buf[:n], []byte("peer/transfer."))
	}, 5*time.Second, 20*time.Millisecond, "goroutines of the package still running after Close")
}

// TestFindDialsBounded: a Find that yields many providers, each hanging in
// its handshake, gets only a few connection attempts at a time.
func TestFindDialsBounded(t *testing.T) {
	addr, peak := nettest.HangingListener(t)

	_, tr, _ := newFetcher(t, nil)
	const providers = 40
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := tr.Fetch(ctx, transfer.Request{
		Root: buildDAG(t, 10, 16, 2, 22).root,
		Find: func(ctx context.Context) <-chan peer.AddrInfo {
			ch := make(chan peer.AddrInfo)
			go func() {
				for range providers {
					id, err := libp2ptest.RandPeerID()
					if err != nil {
						return
					}
					select {
					case ch <- peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}}:
					case <-ctx.Done():
						return
					}
				}
			}()
			return ch
		},
		Expand:  expand,
		Deliver: newCollector().deliver,
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	t.Logf("at most %d connection attempts at once", peak())
	require.Positive(t, peak())
	require.LessOrEqual(t, peak(), int32(8))
}

// pooledStore serves copies from a pool and counts what the server hands back.
type pooledStore struct {
	s        *memStore
	released atomic.Int64
}

func (p *pooledStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := p.s.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	buf := wire.GetBuffer(len(b))
	copy(buf, b)
	return buf, nil
}

func (p *pooledStore) Release(b []byte) {
	p.released.Add(1)
	clear(b) // a buffer reused too early would now carry zeros, which the fetcher would reject
	wire.PutBuffer(b)
}

func TestServerReleasesBlocksItWrote(t *testing.T) {
	d := buildDAG(t, 2<<20, 16<<10, 1024, 3)
	ps := &pooledStore{s: d.store}
	src := newSeeder(t, ps)
	_, tr, ids := newFetcher(t, []seeder{src})
	got := newCollector()
	st, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)
	require.Zero(t, st.BadBlocks)
	require.Equal(t, src.t.ServerStats().Blocks, ps.released.Load(), "every block written is handed back once")
}

// Received blocks are delivered one at a time, and hashing goes on while a Deliver blocks: a slow
// disk write holds one goroutine, not every verifier.
func TestSlowDeliverDoesNotStopVerification(t *testing.T) {
	d := buildDAG(t, 2<<20, 16<<10, 1024, 12) // a root and 128 leaves
	src := newSeeder(t, d.store)
	_, tr, ids := newFetcher(t, []seeder{src}, transfer.WithVerifyWorkers(2))
	var leaves, delivering, most atomic.Int32
	var once sync.Once
	got := newCollector()
	req := request(d, ids, got)
	req.Expand = func(c cid.Cid, b []byte) ([]cid.Cid, error) {
		if c.Type() == cid.Raw {
			leaves.Add(1)
		}
		return expand(c, b)
	}
	req.Deliver = func(c cid.Cid, b []byte) error {
		n := delivering.Add(1)
		defer delivering.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if c.Type() == cid.Raw {
			once.Do(func() {
				// The first leaf's write blocks until three more leaves are hashed and expanded.
				require.Eventually(t, func() bool { return leaves.Load() >= 4 }, 10*time.Second, time.Millisecond)
			})
		}
		return got.deliver(c, b)
	}
	_, err := tr.Fetch(t.Context(), req)
	require.NoError(t, err)
	requireComplete(t, d, got)
	require.EqualValues(t, 1, most.Load(), "Deliver ran concurrently")
}

// TestSourcesCountOnlyPeersThatDelivered asks four peers of which one holds the file: the
// fetch's sources, in its progress and its stats, are that one.
func TestSourcesCountOnlyPeersThatDelivered(t *testing.T) {
	d := buildDAG(t, 2<<20, 64<<10, 1024, 9)
	full := newSeeder(t, d.store)
	seeders := []seeder{newSeeder(t, newMemStore()), newSeeder(t, newMemStore()), full, newSeeder(t, newMemStore())}
	_, tr, ids := newFetcher(t, seeders)
	got := newCollector()
	req := request(d, ids, got)
	var mu sync.Mutex
	var peers []int
	req.Progress = func(p transfer.Progress) {
		mu.Lock()
		peers = append(peers, p.Peers)
		mu.Unlock()
	}
	st, err := tr.Fetch(t.Context(), req)
	require.NoError(t, err)
	requireComplete(t, d, got)
	require.Len(t, st.Peers, 4, "every peer was asked")
	require.Equal(t, 1, st.Sources())
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, peers)
	for _, n := range peers {
		require.LessOrEqual(t, n, 1, "progress counts only peers that sent a block: %v", peers)
	}
	require.Equal(t, 1, peers[len(peers)-1])
}

// TestPeerWithNothingTakesNoWork fetches from a slow seeder while a peer that holds nothing is
// in the fetch: that peer, having answered DontHave and delivered nothing, does not take over
// the seeder's work at the end, so nothing is received twice.
func TestPeerWithNothingTakesNoWork(t *testing.T) {
	d := buildDAG(t, 12<<20, 1<<20, 1024, 2)
	full := newSeeder(t, d.store, transfer.WithRateLimit(8000000))
	for range 3 {
		_, tr, ids := newFetcher(t, []seeder{full, newSeeder(t, newMemStore())})
		got := newCollector()
		st, err := tr.Fetch(t.Context(), request(d, ids, got))
		require.NoError(t, err)
		requireComplete(t, d, got)
		require.Zero(t, st.DuplicateBytes, "received %d bytes for %d", st.Received, st.Bytes)
	}
}

// While a peer fetches, the server's Serving names the first CID each of its streams asked for:
// the fetch's root, which is what lets the node name the file it uploads.
func TestServingNamesTheRootAskedFirst(t *testing.T) {
	d := buildDAG(t, 4<<20, 256<<10, 1024, 7)
	src := newSeeder(t, d.store)
	h, tr, ids := newFetcher(t, []seeder{src})
	got := newCollector()
	hold := make(chan struct{})
	got.hook = func(n int) {
		if n == 3 {
			<-hold
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := tr.Fetch(t.Context(), request(d, ids, got))
		done <- err
	}()
	var s transfer.Serving
	require.Eventually(t, func() bool {
		s = src.t.Serving()[h.ID()]
		return len(s.Wants) > 0
	}, 10*time.Second, 5*time.Millisecond, "the fetch's stream asks something")
	require.Equal(t, d.root, s.Wants[0])
	require.LessOrEqual(t, len(s.Wants), s.Streams, "one CID per stream that asked")
	close(hold)
	require.NoError(t, <-done)
	requireComplete(t, d, got)
}
