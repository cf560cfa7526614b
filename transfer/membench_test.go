package transfer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/transfer"
)

// genChunk fills buf with the content of chunk i: its index, then bytes
// drawn from a generator seeded with it.
func genChunk(i uint64, buf []byte) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], i)
	_, _ = rand.NewChaCha8(seed).Read(buf)
	binary.LittleEndian.PutUint64(buf, i)
}

// genReader yields n chunks of size bytes made by genChunk.
type genReader struct {
	size, n, i uint64
	buf        []byte
	off        int
}

func (r *genReader) Read(p []byte) (int, error) {
	if r.off == len(r.buf) {
		if r.i == r.n {
			return 0, io.EOF
		}
		if r.buf == nil {
			r.buf = make([]byte, r.size)
		}
		genChunk(r.i, r.buf)
		r.i++
		r.off = 0
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// genStore keeps inner nodes and regenerates leaves on demand, so a large
// DAG costs almost no memory on the serving side.
type genStore struct {
	mu     sync.RWMutex
	size   int
	inner  map[cid.Cid][]byte
	leaves map[cid.Cid]uint64
}

func (g *genStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if b, ok := g.inner[c]; ok {
		return b, nil
	}
	i, ok := g.leaves[c]
	if !ok {
		return nil, transfer.ErrNotFound
	}
	b := make([]byte, g.size)
	genChunk(i, b)
	return b, nil
}

// genDAG is the DAGService side of a genStore.
type genDAG struct{ *genStore }

func (g genDAG) Get(context.Context, cid.Cid) (ipld.Node, error) {
	return nil, errors.New("not needed")
}

func (g *genStore) Add(_ context.Context, n ipld.Node) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n.Cid().Type() == cid.Raw {
		g.leaves[n.Cid()] = binary.LittleEndian.Uint64(n.RawData())
	} else {
		g.inner[n.Cid()] = bytes.Clone(n.RawData())
	}
	return nil
}
func (g *genStore) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		_ = g.Add(ctx, n)
	}
	return nil
}
func (g *genStore) GetMany(context.Context, []cid.Cid) <-chan *ipld.NodeOption { return nil }
func (g *genStore) Remove(context.Context, cid.Cid) error                      { return nil }
func (g *genStore) RemoveMany(context.Context, []cid.Cid) error                { return nil }

func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkFetch1GiBMemory fetches 1 GiB (1 MiB chunks) from a peer that
// generates its leaves, and reports the peak RSS of the process, which holds
// both the serving and the fetching node.
func BenchmarkFetch1GiBMemory(b *testing.B) {
	const chunk, n = 1 << 20, 1024
	g := &genStore{size: chunk, inner: map[cid.Cid][]byte{}, leaves: map[cid.Cid]uint64{}}
	params := helpers.DagBuilderParams{Maxlinks: 1024, RawLeaves: true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}, Dagserv: genDAG{g}}
	db, err := params.New(chunker.NewSizeSplitter(&genReader{size: chunk, n: n}, chunk))
	require.NoError(b, err)
	nd, err := balanced.Layout(db)
	require.NoError(b, err)
	require.Len(b, g.leaves, n)

	src := newSeeder(b, g)
	_, tr, ids := newFetcher(b, []seeder{src})
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if r := vmRSS(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	})
	b.SetBytes(chunk * n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, err := tr.Fetch(b.Context(), transfer.Request{Root: nd.Cid(), Providers: ids, Expand: expand,
			Deliver: func(cid.Cid, []byte) error { return nil }})
		require.NoError(b, err)
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(peak.Load())/(1<<20), "peakRSS-MiB")
}
