package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/transfer"
)

// memStore is a map-backed Blockstore and Local.
type memStore struct {
	mu sync.RWMutex
	m  map[cid.Cid][]byte
}

func newMemStore() *memStore { return &memStore{m: make(map[cid.Cid][]byte)} }

func (s *memStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.m[c]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", c, transfer.ErrNotFound)
	}
	return b, nil
}

func (s *memStore) Has(_ context.Context, c cid.Cid) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[c]
	return ok, nil
}

func (s *memStore) Put(c cid.Cid, b []byte) {
	s.mu.Lock()
	s.m[c] = b
	s.mu.Unlock()
}

func (s *memStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// mapDAG is the in-memory DAGService the importer writes to.
type mapDAG struct{ s *memStore }

func (d mapDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	return nil, errors.New("not needed")
}
func (d mapDAG) GetMany(context.Context, []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption)
	close(ch)
	return ch
}
func (d mapDAG) Add(_ context.Context, n ipld.Node) error {
	d.s.Put(n.Cid(), bytes.Clone(n.RawData()))
	return nil
}
func (d mapDAG) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		_ = d.Add(ctx, n)
	}
	return nil
}
func (d mapDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (d mapDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// dag is a test file imported as a UnixFS DAG.
type dag struct {
	root  cid.Cid
	store *memStore
}

// buildDAG imports size pseudo-random bytes (seeded) in chunks of chunk
// bytes with at most maxLinks links per node.
func buildDAG(t testing.TB, size, chunk, maxLinks int, seed uint64) dag {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return importDAG(t, data, chunk, maxLinks)
}

func importDAG(t testing.TB, data []byte, chunk, maxLinks int) dag {
	t.Helper()
	s := newMemStore()
	params := helpers.DagBuilderParams{
		Maxlinks:   maxLinks,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256},
		Dagserv:    mapDAG{s},
	}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), int64(chunk)))
	require.NoError(t, err)
	nd, err := balanced.Layout(db)
	require.NoError(t, err)
	return dag{root: nd.Cid(), store: s}
}

// expand lists the links of a dag-pb node; raw leaves have none.
func expand(c cid.Cid, block []byte) ([]cid.Cid, error) {
	if c.Type() == cid.Raw {
		return nil, nil
	}
	nd, err := merkledag.DecodeProtobuf(block)
	if err != nil {
		return nil, err
	}
	kids := make([]cid.Cid, 0, len(nd.Links()))
	for _, l := range nd.Links() {
		kids = append(kids, l.Cid)
	}
	return kids, nil
}

// collector is a Deliver that keeps copies and checks exactly-once.
type collector struct {
	mu    sync.Mutex
	store *memStore
	dups  int
	n     int
	hook  func(n int)
}

func newCollector() *collector { return &collector{store: newMemStore()} }

func (c *collector) deliver(id cid.Cid, b []byte) error {
	c.mu.Lock()
	if ok, _ := c.store.Has(context.Background(), id); ok {
		c.dups++
	}
	c.store.Put(id, bytes.Clone(b))
	c.n++
	n, hook := c.n, c.hook
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return nil
}

// requireComplete checks that got holds exactly the blocks of d.
func requireComplete(t testing.TB, d dag, got *collector) {
	t.Helper()
	got.mu.Lock()
	defer got.mu.Unlock()
	require.Zero(t, got.dups, "blocks delivered twice")
	require.Equal(t, d.store.Len(), got.store.Len())
	for c, b := range d.store.m {
		require.Equal(t, b, got.store.m[c], "block %s", c)
	}
}

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.DisableRelay(),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	require.NoError(t, a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}))
}

// seeder is a host serving a store.
type seeder struct {
	h host.Host
	t *transfer.Transfer
}

func newSeeder(t testing.TB, bs transfer.Blockstore, opts ...transfer.Option) seeder {
	t.Helper()
	h := newHost(t)
	tr := transfer.New(h, bs, opts...)
	require.NoError(t, tr.Start())
	t.Cleanup(func() { _ = tr.Close() })
	return seeder{h: h, t: tr}
}

// newFetcher returns a host and a Transfer connected to the seeders.
func newFetcher(t testing.TB, seeders []seeder, opts ...transfer.Option) (host.Host, *transfer.Transfer, []peer.ID) {
	t.Helper()
	h := newHost(t)
	tr := transfer.New(h, nil, opts...)
	require.NoError(t, tr.Start())
	t.Cleanup(func() { _ = tr.Close() })
	var ids []peer.ID
	for _, s := range seeders {
		connect(t, h, s.h)
		ids = append(ids, s.h.ID())
	}
	return h, tr, ids
}

// corruptStore flips a byte of every block it returns.
type corruptStore struct{ s *memStore }

func (c corruptStore) Get(ctx context.Context, id cid.Cid) ([]byte, error) {
	b, err := c.s.Get(ctx, id)
	if err != nil || len(b) == 0 {
		return b, err
	}
	b = bytes.Clone(b)
	b[len(b)/2] ^= 0xff
	return b, nil
}
