package transfer_test

import (
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"peer/transfer"
)

func benchFetch(b *testing.B, d dag, size int, srcs []seeder) transfer.Stats {
	_, tr, ids := newFetcher(b, srcs)
	var st transfer.Stats
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var n atomic.Int64
		var err error
		st, err = tr.Fetch(b.Context(), transfer.Request{
			Root: d.root, Providers: ids, Expand: expand,
			Deliver: func(_ cid.Cid, blk []byte) error { n.Add(int64(len(blk))); return nil },
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// BenchmarkFetchOneSource fetches 256 MiB in 1 MiB chunks from one peer over
// TCP + TLS + yamux on loopback.
func BenchmarkFetchOneSource(b *testing.B) {
	const size = 256 << 20
	d := buildDAG(b, size, 1<<20, 1024, 100)
	benchFetch(b, d, size, []seeder{newSeeder(b, d.store)})
}

// BenchmarkFetchFourRateLimited fetches 64 MiB in 256 KiB chunks from four
// peers each limited to 25 MB/s.
func BenchmarkFetchFourRateLimited(b *testing.B) {
	const size = 64 << 20
	d := buildDAG(b, size, 256<<10, 1024, 101)
	var srcs []seeder
	for range 4 {
		srcs = append(srcs, newSeeder(b, d.store, transfer.WithRateLimit(25_000_000)))
	}
	st := benchFetch(b, d, size, srcs)
	b.ReportMetric(100*float64(st.DuplicateBytes)/float64(st.Received), "dup%")
	for i, s := range srcs {
		b.ReportMetric(float64(st.Peers[s.h.ID()].Bytes)/float64(st.Received)*100, "share"+string(rune('A'+i))+"%")
	}
}
