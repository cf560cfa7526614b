//go:build unix

package node_test

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store/unixfs"
	"peer/transfer"
	"peer/transfer/wire"
)

// bombNode encodes a File node of fanout children of size bytes each; leaf i*fanout+j is the
// raw CID of its index (no such block exists).
func bombNode(tb testing.TB, kids []cid.Cid, size uint64) []byte {
	links := make([]unixfs.Link, len(kids))
	sizes := make([]uint64, len(kids))
	for i, k := range kids {
		links[i], sizes[i] = unixfs.Link{Cid: k, Tsize: size}, size
	}
	return unixfs.EncodePB(unixfs.PBNode{Links: links, Data: unixfs.FSData{Type: unixfs.File, FileSize: size * uint64(len(kids)), HasFileSize: true, BlockSizes: sizes}.Encode()})
}

func bombCID(tb testing.TB, codec uint64, b []byte) cid.Cid {
	c, err := cid.NewPrefixV1(codec, mh.SHA2_256).Sum(b)
	require.NoError(tb, err)
	return c
}

// BenchmarkFetchDAGBomb has a node fetch a root of 1,024 inner nodes of 1,024 leaves each (a
// 1 TiB claim whose sizes add up) from a peer that sends every inner node asked for and answers
// every leaf DontHave. It reports the peak heap above the start, the CPU time and how many inner
// nodes were asked for.
func BenchmarkFetchDAGBomb(b *testing.B) {
	const fanout = 1024
	inner := func(i int) []byte {
		kids := make([]cid.Cid, fanout)
		var name [8]byte
		for j := range kids {
			binary.BigEndian.PutUint64(name[:], uint64(i*fanout+j))
			kids[j] = bombCID(b, cid.Raw, name[:])
		}
		return bombNode(b, kids, 1<<20)
	}
	index := map[cid.Cid]int{}
	kids := make([]cid.Cid, fanout)
	for i := range kids {
		kids[i] = bombCID(b, cid.DagProtobuf, inner(i))
		index[kids[i]] = i
	}
	rootB := bombNode(b, kids, fanout<<20)
	root := bombCID(b, cid.DagProtobuf, rootB)

	for b.Loop() {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		require.NoError(b, err)
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
				out = out[:0]
				for _, c := range m.CIDs {
					data := rootB
					if i, ok := index[c]; ok {
						asked.Add(1)
						data = inner(i)
					} else if !c.Equals(root) {
						out, _ = wire.AppendControl(out, &wire.Message{Type: wire.TypeDontHave, CID: c})
						continue
					}
					out, _ = wire.AppendBlockHeader(out, c, len(data))
					out = append(out, data...)
				}
				if _, err := s.Write(out); err != nil {
					return
				}
			}
		})
		n := repoNode(b, nil, func(o *node.Options) {
			o.Transfer = append(o.Transfer, transfer.WithNoProvidersTimeout(time.Second))
		})
		require.NoError(b, n.Host().Connect(b.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))

		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		var peak atomic.Uint64
		stop, sampled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak.Store(max(peak.Load(), ms.HeapAlloc))
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
		_, err = n.Fetch(ctx, root, node.FetchOptions{Output: filepath.Join(b.TempDir(), "bomb")})
		cancel()
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		close(stop)
		<-sampled
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		if !errors.Is(err, transfer.ErrNoProviders) {
			b.Fatalf("fetch of a bomb: %v (peak heap +%d MiB, %.1f s of CPU, %d inner nodes asked for)",
				err, (peak.Load()-min(base, peak.Load()))>>20, cpu.Seconds(), asked.Load())
		}
		b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/(1<<20), "peak-heap-MiB")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(asked.Load()), "inner-asked")
		_ = h.Close()
	}
}
