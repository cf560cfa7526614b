package transfer_test

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/stretchr/testify/require"

	"peer/transfer"
	"peer/transfer/wire"
)

// bufferedStore serves a memStore's blocks as the node does: each Get reads into a pooled buffer
// that the server hands back through Release. It counts the bytes handed out and not given back,
// and their peak: what the server holds.
type bufferedStore struct {
	s          *memStore
	held, peak atomic.Int64
}

func (b *bufferedStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.s.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	buf := wire.GetBuffer(len(data))
	copy(buf, data)
	n := b.held.Add(int64(cap(buf)))
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return buf, nil
}

func (b *bufferedStore) Release(data []byte) {
	b.held.Add(-int64(cap(data)))
	wire.PutBuffer(data)
}

// leaves lists the raw leaves of d.
func leaves(d dag) []cid.Cid {
	var out []cid.Cid
	for c := range d.store.m {
		if c.Type() == cid.Raw {
			out = append(out, c)
		}
	}
	return out
}

// starve opens streams from h to src that each want every CID of want and never read a byte,
// and returns them once each has sent its request. The streams are reset at cleanup.
func starve(t testing.TB, h host.Host, src seeder, streams int, want []cid.Cid) []network.Stream {
	t.Helper()
	connect(t, h, src.h)
	var out []network.Stream
	for range streams {
		s, err := h.NewStream(context.Background(), src.h.ID(), transfer.ID)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Reset() })
		out = append(out, s)
		for i := 0; i < len(want); i += wire.MaxCIDsPerFrame {
			b, err := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: want[i:min(i+wire.MaxCIDsPerFrame, len(want))]})
			require.NoError(t, err)
			_, err = s.Write(b)
			require.NoError(t, err)
		}
	}
	return out
}

// Streams that want large blocks and never read hold no more than the serving budget, one peer
// no more than its cap, and an honest fetch from the same server completes meanwhile.
func TestStreamsThatNeverReadStayWithinBudget(t *testing.T) {
	const budget, perPeer = 16 << 20, 4 << 20
	d := buildDAG(t, 16<<20, 1<<20, 1024, 31)
	bs := &bufferedStore{s: d.store}
	src := newSeeder(t, bs, transfer.WithServeMemory(budget, perPeer))
	want := leaves(d)
	const attackers, streams = 3, 8
	var starving []network.Stream
	for range attackers {
		starving = append(starving, starve(t, newHost(t), src, streams, want)...)
	}
	// Every attacker stream has its first block in hand: the budget is as full as they can make it.
	require.Eventually(t, func() bool {
		return src.t.ServerStats().Streams == attackers*streams && bs.held.Load() >= attackers*perPeer/2
	}, 10*time.Second, 5*time.Millisecond)

	_, tr, ids := newFetcher(t, []seeder{src})
	got := newCollector()
	_, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)

	st := src.t.ServerStats()
	t.Logf("held by the store %d MiB (peak %d MiB), budget peak %d MiB", bs.held.Load()>>20, bs.peak.Load()>>20, st.BytesHeldPeak>>20)
	require.LessOrEqual(t, bs.peak.Load(), int64(budget), "blocks held past the budget")
	require.LessOrEqual(t, st.BytesHeldPeak, int64(budget))
	require.LessOrEqual(t, bs.held.Load(), st.BytesHeld, "every block held is counted")
	// The attackers still hold theirs: at most their caps, not four blocks per stream.
	require.LessOrEqual(t, bs.held.Load(), int64(attackers*perPeer))

	// Streams that end give back all they held.
	for _, s := range starving {
		_ = s.Reset()
	}
	require.Eventually(t, func() bool { return src.t.ServerStats().BytesHeld == 0 && bs.held.Load() == 0 }, 10*time.Second, 5*time.Millisecond)
}

// When streams that never read hold the whole budget, the one stuck longest is reset once others
// have waited: an honest fetch still gets memory, and completes, long before the write deadline
// would free any.
func TestStuckStreamsEvictedWhenMemoryIsShort(t *testing.T) {
	const budget, perPeer = 12 << 20, 4 << 20
	d := buildDAG(t, 8<<20, 1<<20, 1024, 33)
	bs := &bufferedStore{s: d.store}
	src := newSeeder(t, bs, transfer.WithServeMemory(budget, perPeer))
	want := leaves(d)
	const attackers, streams = 4, 8
	for range attackers {
		starve(t, newHost(t), src, streams, want)
	}
	// Each attacker holds three 1 MiB blocks and waits for a fourth: the budget is full.
	require.Eventually(t, func() bool {
		st := src.t.ServerStats()
		return st.Streams == attackers*streams && st.BytesHeldPeak >= budget-1<<20
	}, 10*time.Second, 5*time.Millisecond)

	_, tr, ids := newFetcher(t, []seeder{src})
	got := newCollector()
	_, err := tr.Fetch(t.Context(), request(d, ids, got))
	require.NoError(t, err)
	requireComplete(t, d, got)
	st := src.t.ServerStats()
	t.Logf("evicted %d streams; budget peak %d MiB", st.StreamsEvicted, st.BytesHeldPeak>>20)
	require.Positive(t, st.StreamsEvicted)
	require.LessOrEqual(t, st.BytesHeldPeak, int64(budget))
	require.LessOrEqual(t, bs.peak.Load(), int64(budget))
}

// TestServeMemoryUnderAttackFigures measures the heap of a serving Transfer with its defaults
// while 24 peers × 8 streams want 1 MiB blocks and never read. It only logs (set
// PEER_MEMFIGURES=1 to run it).
func TestServeMemoryUnderAttackFigures(t *testing.T) {
	if os.Getenv("PEER_MEMFIGURES") == "" {
		t.Skip("set PEER_MEMFIGURES=1 to measure")
	}
	d := buildDAG(t, 32<<20, 1<<20, 1024, 32)
	bs := &bufferedStore{s: d.store}
	src := newSeeder(t, bs)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	idleHeap, idleRSS := ms.HeapInuse, vmRSS()
	want := leaves(d)
	var wg sync.WaitGroup
	for range 24 {
		h := newHost(t)
		wg.Go(func() { starve(t, h, src, 8, want) })
	}
	wg.Wait()
	var peakHeap uint64
	var peakRSS int64
	fetched := make(chan error, 1)
	start := time.Now()
	var took time.Duration
	_, tr, ids := newFetcher(t, []seeder{src})
	got := newCollector()
	go func() {
		_, err := tr.Fetch(t.Context(), request(d, ids, got))
		took = time.Since(start)
		fetched <- err
	}()
	for done := false; !done || time.Since(start) < 5*time.Second; {
		select {
		case err := <-fetched:
			require.NoError(t, err)
			done = true
		case <-time.After(50 * time.Millisecond):
		}
		runtime.ReadMemStats(&ms)
		peakHeap, peakRSS = max(peakHeap, ms.HeapInuse), max(peakRSS, vmRSS())
	}
	requireComplete(t, d, got)
	st := src.t.ServerStats()
	t.Logf("streams %d, evicted %d; held by the store %d MiB (peak %d MiB); heap in use idle %d MiB, peak %d MiB; RSS idle %d MiB, peak %d MiB (the process also holds the 32 MiB DAG and 26 hosts); honest 32 MiB fetch took %v",
		st.Streams, st.StreamsEvicted, bs.held.Load()>>20, bs.peak.Load()>>20, idleHeap>>20, peakHeap>>20, idleRSS>>20, peakRSS>>20, took)
}
