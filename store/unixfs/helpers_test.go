package unixfs_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 1})
	_, _ = r.Read(b)
	return b
}

// storedBlock is a copy of one block, in the order it was stored.
type storedBlock struct {
	Cid  cid.Cid
	Data []byte
}

// memDAG is an in-memory DAGService that remembers the order of Adds.
type memDAG struct {
	mu     sync.Mutex
	added  []storedBlock
	blocks map[cid.Cid]format.Node
}

var _ format.DAGService = (*memDAG)(nil)

func newMemDAG() *memDAG { return &memDAG{blocks: map[cid.Cid]format.Node{}} }

func (m *memDAG) Get(_ context.Context, c cid.Cid) (format.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.blocks[c]
	if !ok {
		return nil, format.ErrNotFound{Cid: c}
	}
	return n, nil
}

func (m *memDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *format.NodeOption {
	ch := make(chan *format.NodeOption, len(cs))
	for _, c := range cs {
		n, err := m.Get(ctx, c)
		ch <- &format.NodeOption{Node: n, Err: err}
	}
	close(ch)
	return ch
}

func (m *memDAG) Add(_ context.Context, n format.Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.added = append(m.added, storedBlock{Cid: n.Cid(), Data: bytes.Clone(n.RawData())})
	m.blocks[n.Cid()] = n
	return nil
}

func (m *memDAG) AddMany(ctx context.Context, ns []format.Node) error {
	for _, n := range ns {
		if err := m.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (m *memDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (m *memDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// boxoImport builds data with boxo's balanced layout as `ipfs add` does under
// the unixfs-v1-2025 profile, with the given chunk size and fan-out, and
// returns the root and the blocks in the order boxo stored them.
func boxoImport(t testing.TB, data []byte, chunkSize, maxLinks int) (cid.Cid, []storedBlock) {
	return boxoImportWith(t, data, chunkSize, maxLinks, true, cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256})
}

func boxoImportWith(t testing.TB, data []byte, chunkSize, maxLinks int, rawLeaves bool, builder cid.Builder) (cid.Cid, []storedBlock) {
	t.Helper()
	dag := newMemDAG()
	params := helpers.DagBuilderParams{
		Maxlinks:   maxLinks,
		RawLeaves:  rawLeaves,
		CidBuilder: builder,
		Dagserv:    dag,
	}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), int64(chunkSize)))
	require.NoError(t, err)
	root, err := balanced.Layout(db)
	require.NoError(t, err)
	return root.Cid(), dag.added
}

// ourImport imports data and returns the result and a copy of every block
// passed to put, in order.
func ourImport(t testing.TB, data []byte, chunkSize, maxLinks int) (unixfs.ImportResult, []storedBlock) {
	t.Helper()
	var got []storedBlock
	var nextOff uint64
	put := func(b unixfs.Block) error {
		if b.Leaf {
			if b.Offset != nextOff {
				return fmt.Errorf("leaf %s at offset %d, want %d", b.Cid, b.Offset, nextOff)
			}
			nextOff += uint64(len(b.Data))
		}
		got = append(got, storedBlock{Cid: b.Cid, Data: bytes.Clone(b.Data)})
		return nil
	}
	opts := unixfs.ImportOptions{ChunkSize: chunkSize}
	res, err := unixfs.ImportMaxLinks(t.Context(), bytes.NewReader(data), opts, maxLinks, put)
	require.NoError(t, err)
	require.Equal(t, uint64(len(data)), nextOff, "leaves cover the file")
	return res, got
}

// blockGetter serves blocks from a map, verifying them as a real store would.
type blockGetter struct {
	mu     sync.Mutex
	blocks map[cid.Cid][]byte
	gets   int
}

func newBlockGetter(blocks []storedBlock) *blockGetter {
	g := &blockGetter{blocks: map[cid.Cid][]byte{}}
	for _, b := range blocks {
		g.blocks[b.Cid] = b.Data
	}
	return g
}

func (g *blockGetter) get(_ context.Context, c cid.Cid) ([]byte, error) {
	g.mu.Lock()
	g.gets++
	b, ok := g.blocks[c]
	g.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("block %s not found", c)
	}
	if err := unixfs.Verify(c, b); err != nil {
		return nil, err
	}
	return b, nil
}
