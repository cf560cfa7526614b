package transfer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
	"peer/transfer"
	"peer/transfer/wire"
)

// bomb is a DAG of fanout × fanout leaves, each claimed to hold 1 MiB (the sizes add up: only
// the leaf count is the attack), whose inner nodes are made when asked for and whose leaves
// exist nowhere.
type bomb struct {
	fanout int
	root   cid.Cid
	rootB  []byte
	inner  map[cid.Cid]int
}

func newBomb(t testing.TB, fanout int) *bomb {
	t.Helper()
	b := &bomb{fanout: fanout, inner: make(map[cid.Cid]int, fanout)}
	kids := make([]cid.Cid, fanout)
	for i := range kids {
		kids[i] = cidOf(t, cid.DagProtobuf, b.innerBlock(t, i))
		b.inner[kids[i]] = i
	}
	b.rootB = fileNode(kids, 1<<20*uint64(fanout))
	b.root = cidOf(t, cid.DagProtobuf, b.rootB)
	return b
}

func cidOf(t testing.TB, codec uint64, data []byte) cid.Cid {
	c, err := cid.NewPrefixV1(codec, multihash.SHA2_256).Sum(data)
	require.NoError(t, err)
	return c
}

// fileNode encodes a UnixFS File node whose children each hold size bytes.
func fileNode(kids []cid.Cid, size uint64) []byte {
	links := make([]unixfs.Link, len(kids))
	sizes := make([]uint64, len(kids))
	for i, k := range kids {
		links[i] = unixfs.Link{Cid: k, Tsize: size}
		sizes[i] = size
	}
	return unixfs.EncodePB(unixfs.PBNode{Links: links, Data: unixfs.FSData{Type: unixfs.File, FileSize: size * uint64(len(kids)), HasFileSize: true, BlockSizes: sizes}.Encode()})
}

func (b *bomb) innerBlock(t testing.TB, i int) []byte {
	kids := make([]cid.Cid, b.fanout)
	var name [8]byte
	for j := range kids {
		binary.BigEndian.PutUint64(name[:], uint64(i*b.fanout+j))
		kids[j] = cidOf(t, cid.Raw, name[:])
	}
	return fileNode(kids, 1<<20)
}

// serve makes h the bomb's only source: it sends every inner node asked for, and answers every
// leaf with DontHave (or, silent, with nothing). It counts the inner nodes asked for.
func (b *bomb) serve(t testing.TB, h host.Host, silent bool) *atomic.Int64 {
	var asked atomic.Int64
	h.SetStreamHandler(transfer.ID, func(s network.Stream) {
		defer s.Reset()
		r := wire.NewReader(s, nil)
		var out []byte
		for {
			_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
			m, err := r.Read()
			if err != nil {
				return
			}
			if m.Type != wire.TypeWant {
				continue
			}
			out = out[:0]
			for _, c := range m.CIDs {
				var data []byte
				if c.Equals(b.root) {
					data = b.rootB
				} else if i, ok := b.inner[c]; ok {
					asked.Add(1)
					data = b.innerBlock(t, i)
				}
				switch {
				case data != nil:
					out, err = wire.AppendBlockHeader(out, c, len(data))
					require.NoError(t, err)
					out = append(out, data...)
				case !silent:
					out, err = wire.AppendControl(out, &wire.Message{Type: wire.TypeDontHave, CID: c})
					require.NoError(t, err)
				}
			}
			if len(out) > 0 {
				_ = s.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := s.Write(out); err != nil {
					return
				}
			}
		}
	})
	return &asked
}

// A DAG bomb unfolds lazily: the fetch asks for a few of its inner nodes at a time and knows a
// bounded number of blocks, not every leaf the attacker names. It ends, as any fetch nobody can
// serve, with ErrNoProviders.
func TestDAGBombUnfoldsWithinABoundedFrontier(t *testing.T) {
	const fanout = 256 // 65,536 leaves
	b := newBomb(t, fanout)
	attacker := newHost(t)
	asked := b.serve(t, attacker, false)
	_, tr, ids := newFetcher(t, []seeder{{h: attacker}}, transfer.WithNoProvidersTimeout(200*time.Millisecond))

	var mu sync.Mutex
	most := 0
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := tr.Fetch(ctx, transfer.Request{
		Root: b.root, Providers: ids, Expand: unixfsExpand, MaxDepth: unixfs.MaxDepth,
		Deliver: func(cid.Cid, []byte) error { return nil },
		Progress: func(p transfer.Progress) {
			mu.Lock()
			most = max(most, p.Blocks)
			mu.Unlock()
			if asked.Load() > fanout/2 {
				cancel() // the whole bomb is being unfolded: no need to wait for the end
			}
		},
	})
	require.ErrorIs(t, err, transfer.ErrNoProviders)
	// The frontier holds about 16,384 blocks: 64 inner nodes' worth of leaves, and a few more
	// inner nodes being asked for.
	require.LessOrEqual(t, asked.Load(), int64(96), "inner nodes asked for, of %d", fanout)
	mu.Lock()
	defer mu.Unlock()
	require.Less(t, most, 20_000, "blocks the fetch knew at once, of %d", 1+fanout+fanout*fanout)
}

// unixfsExpand is Expand by the store's parser, which checks sizes.
func unixfsExpand(c cid.Cid, block []byte) ([]cid.Cid, error) {
	n, err := unixfs.ParseNode(c, block)
	if err != nil {
		return nil, err
	}
	kids := make([]cid.Cid, len(n.Children))
	for i, ch := range n.Children {
		kids[i] = ch.Cid
	}
	return kids, nil
}

// BenchmarkDAGBomb fetches a bomb of 1,048,576 leaves (1,024 inner nodes of 1,024 links, ~48 MB
// if the attacker is asked for all) from a source that sends every inner node and no leaf, until
// the fetch drops it as stalled. It reports the peak heap above the start and the CPU time.
func BenchmarkDAGBomb(b *testing.B) {
	bm := newBomb(b, 1024)
	for b.Loop() {
		attacker := newHost(b)
		asked := bm.serve(b, attacker, true)
		_, tr, ids := newFetcher(b, []seeder{{h: attacker}}, transfer.WithStallTimeout(2*time.Second))
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		cpu0 := cpuTime()
		_, err := tr.Fetch(b.Context(), transfer.Request{
			Root: bm.root, Providers: ids, Expand: unixfsExpand, MaxDepth: unixfs.MaxDepth,
			Deliver: func(cid.Cid, []byte) error { return nil },
		})
		cpu := cpuTime() - cpu0
		close(stop)
		<-sampled
		if !errors.Is(err, transfer.ErrNoProviders) {
			b.Fatalf("fetch of a bomb: %v", err)
		}
		b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/(1<<20), "peak-heap-MiB")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(asked.Load()), "inner-asked")
	}
}

// An honest DAG larger than the frontier (more leaves than it holds at once; or so many small
// inner nodes that their reservations fill it) is fetched whole, each block once, from two
// sources.
func TestFetchLargerThanTheFrontier(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		size, chunk, maxLinks int
	}{
		{"20,000 leaves", 20_000 * 256, 256, 1024},
		{"fanout 4, seven levels", 16_384 * 256, 256, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := buildDAG(t, tt.size, tt.chunk, tt.maxLinks, 31)
			a, b := newSeeder(t, d.store), newSeeder(t, d.store)
			_, tr, ids := newFetcher(t, []seeder{a, b})
			got := newCollector()
			st, err := tr.Fetch(t.Context(), request(d, ids, got))
			require.NoError(t, err)
			requireComplete(t, d, got)
			require.Equal(t, d.store.Len(), st.Blocks)
		})
	}
}
