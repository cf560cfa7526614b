package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carindex "github.com/ipld/go-car/v2/index"
	"github.com/ipld/go-car/v2/storage"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/unixfs"
)

// carBlock is one block to put in a CAR.
type carBlock struct {
	c    cid.Cid
	data []byte
}

// boxoDAG collects the blocks boxo's importer adds, in order.
type boxoDAG struct {
	mu     sync.Mutex
	blocks []carBlock
	nodes  map[cid.Cid]format.Node
}

var _ format.DAGService = (*boxoDAG)(nil)

func (m *boxoDAG) Get(_ context.Context, c cid.Cid) (format.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.nodes[c]; ok {
		return n, nil
	}
	return nil, format.ErrNotFound{Cid: c}
}

func (m *boxoDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *format.NodeOption {
	ch := make(chan *format.NodeOption, len(cs))
	for _, c := range cs {
		n, err := m.Get(ctx, c)
		ch <- &format.NodeOption{Node: n, Err: err}
	}
	close(ch)
	return ch
}

func (m *boxoDAG) Add(_ context.Context, n format.Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes == nil {
		m.nodes = map[cid.Cid]format.Node{}
	}
	m.blocks = append(m.blocks, carBlock{n.Cid(), bytes.Clone(n.RawData())})
	m.nodes[n.Cid()] = n
	return nil
}

func (m *boxoDAG) AddMany(ctx context.Context, ns []format.Node) error {
	for _, n := range ns {
		if err := m.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (m *boxoDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (m *boxoDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// boxoFile builds data with boxo's balanced importer, as `ipfs add` does: CIDv1 with raw leaves
// (the store's own profile), or CIDv0 with dag-pb leaves (Kubo's default before it).
func boxoFile(t *testing.T, data []byte, chunk int64, v0 bool) (cid.Cid, []carBlock) {
	t.Helper()
	dag := &boxoDAG{}
	var builder cid.Builder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}
	if v0 {
		builder = cid.V0Builder{}
	}
	params := helpers.DagBuilderParams{Maxlinks: helpers.DefaultLinksPerBlock, RawLeaves: !v0, CidBuilder: builder, Dagserv: dag}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), chunk))
	require.NoError(t, err)
	root, err := balanced.Layout(db)
	require.NoError(t, err)
	return root.Cid(), dag.blocks
}

// goCARv1 writes a CARv1 with go-car, the independent implementation.
func goCARv1(t *testing.T, roots []cid.Cid, blocks []carBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, roots, carv2.WriteAsCarV1(true), carv2.AllowDuplicatePuts(true))
	require.NoError(t, err)
	for _, b := range blocks {
		require.NoError(t, w.Put(t.Context(), b.c.KeyString(), b.data))
	}
	return buf.Bytes()
}

// goCARv2 writes a CARv2 with its index, as go-car's own writer makes it.
func goCARv2(t *testing.T, roots []cid.Cid, blocks []carBlock) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v2.car")
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := storage.NewWritable(f, roots)
	require.NoError(t, err)
	for _, b := range blocks {
		require.NoError(t, w.Put(t.Context(), b.c.KeyString(), b.data))
	}
	require.NoError(t, w.Finalize())
	require.NoError(t, f.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// readCAR reads a CAR with go-car, which verifies every block, and returns its roots and blocks.
func readCAR(t *testing.T, car []byte) ([]cid.Cid, map[string][]byte, []cid.Cid) {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	require.NoError(t, err)
	got := map[string][]byte{}
	var order []cid.Cid
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NotContains(t, got, b.Cid().KeyString(), "each block once")
		got[b.Cid().KeyString()] = b.RawData()
		order = append(order, b.Cid())
	}
	return br.Roots, got, order
}

func importCAR(t *testing.T, s *store.Store, car []byte) store.ImportResult {
	t.Helper()
	res, err := s.ImportCAR(t.Context(), bytes.NewReader(car))
	require.NoError(t, err)
	return res
}

func export(t *testing.T, s *store.Store, root cid.Cid) []byte {
	t.Helper()
	var buf bytes.Buffer
	res, err := s.Export(t.Context(), root, &buf)
	require.NoError(t, err)
	require.Equal(t, uint64(buf.Len()), res.Bytes)
	return buf.Bytes()
}

// Export, then import into a fresh repo: the same root, held complete, the same bytes; and the
// CAR is what go-car reads, with exactly the blocks boxo's importer makes for those bytes.
func TestCARExportImportRoundTrip(t *testing.T) {
	data := randomBytes(21, 3<<20+12345)
	src := open(t, newRepo(t))
	f, err := src.Add(t.Context(), bytes.NewReader(data), "movie.mkv", store.AddOptions{ChunkSize: 256 << 10})
	require.NoError(t, err)

	car := export(t, src, f.Root)
	roots, blocks, order := readCAR(t, car)
	require.Equal(t, []cid.Cid{f.Root}, roots)
	require.Equal(t, f.Root, order[0], "parents first: the root leads")
	wantRoot, want := boxoFile(t, data, 256<<10, false)
	require.Equal(t, wantRoot, f.Root)
	require.Len(t, blocks, len(want))
	for _, b := range want {
		require.Equal(t, b.data, blocks[b.c.KeyString()], "block %s", b.c)
	}

	dst := open(t, newRepo(t))
	res := importCAR(t, dst, car)
	var wantBytes uint64
	for _, b := range want {
		wantBytes += uint64(len(b.data))
	}
	require.Equal(t, store.ImportResult{Version: 1, Blocks: len(want), Bytes: wantBytes, New: len(want),
		Roots: []store.ImportedRoot{{CID: f.Root.String(), State: store.RootAdded, Size: uint64(len(data))}}}, res)
	held, ok := dst.File(f.Root)
	require.True(t, ok)
	require.Equal(t, store.Complete, held.State)
	require.Equal(t, uint64(len(data)), held.Size)
	require.Equal(t, data, catAll(t, dst, f.Root))
	require.Equal(t, car, export(t, dst, f.Root), "the same DAG exports to the same bytes")

	// Importing it again changes nothing.
	again := importCAR(t, dst, car)
	require.Zero(t, again.New)
	require.Equal(t, store.RootHeld, again.Roots[0].State)
	_, same, err := dst.Replayed()
	require.NoError(t, err)
	require.True(t, same)
}

// A CAR go-car writes from the blocks boxo's importer makes, as `ipfs dag export` gives them
// (CIDv1 raw leaves, and Kubo's older CIDv0 dag-pb leaves), CARv1 and CARv2, imports and cats
// byte-identical.
func TestCARFromBoxoImports(t *testing.T) {
	data := randomBytes(22, 2<<20+777)
	for _, v0 := range []bool{false, true} {
		root, blocks := boxoFile(t, data, 256<<10, v0)
		for name, car := range map[string][]byte{"v1": goCARv1(t, []cid.Cid{root}, blocks), "v2": goCARv2(t, []cid.Cid{root}, blocks)} {
			t.Run(fmt.Sprintf("v0=%v/%s", v0, name), func(t *testing.T) {
				s := open(t, newRepo(t))
				res := importCAR(t, s, car)
				require.Equal(t, len(blocks), res.Blocks)
				require.Equal(t, []store.ImportedRoot{{CID: root.String(), State: store.RootAdded, Size: uint64(len(data))}}, res.Roots)
				require.Equal(t, data, catAll(t, s, root))
				gc, err := s.GC(t.Context())
				require.NoError(t, err)
				require.Zero(t, gc.Removed, "gc keeps every block of an imported file")
				require.Equal(t, data, catAll(t, s, root))
			})
		}
	}
}

// Several roots in one CAR: each whose DAG is complete is held; one whose blocks are not all
// there is reported, not held.
func TestCARMultiRoot(t *testing.T) {
	a, b := randomBytes(23, 700<<10), randomBytes(24, 1<<20+1)
	rootA, blocksA := boxoFile(t, a, 256<<10, false)
	rootB, blocksB := boxoFile(t, b, 256<<10, false)
	rootC, blocksC := boxoFile(t, randomBytes(25, 600<<10), 256<<10, false)
	all := append(append(append([]carBlock{}, blocksA...), blocksB...), blocksC[1:]...) // C lacks a leaf
	car := goCARv1(t, []cid.Cid{rootA, rootB, rootC}, all)

	s := open(t, newRepo(t))
	res := importCAR(t, s, car)
	require.Equal(t, []store.ImportedRoot{
		{CID: rootA.String(), State: store.RootAdded, Size: uint64(len(a))},
		{CID: rootB.String(), State: store.RootAdded, Size: uint64(len(b))},
		{CID: rootC.String(), State: store.RootIncomplete, Missing: blocksC[0].c.String()},
	}, res.Roots)
	require.Len(t, res.Incomplete(), 1)
	require.Equal(t, a, catAll(t, s, rootA))
	require.Equal(t, b, catAll(t, s, rootB))
	_, ok := s.File(rootC)
	require.False(t, ok, "an incomplete DAG is not held")
	_, err := s.Export(t.Context(), rootC, io.Discard)
	require.ErrorIs(t, err, store.ErrIncomplete)

	// The missing leaf comes in a CAR of its own, without roots: C's root, imported again, is
	// now complete.
	importCAR(t, s, goCARv1(t, nil, blocksC[:1]))
	res = importCAR(t, s, goCARv1(t, []cid.Cid{rootC}, blocksC[len(blocksC)-1:]))
	require.Equal(t, store.RootAdded, res.Roots[0].State)
}

func sum(t *testing.T, codec uint64, hash uint64, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: codec, MhType: hash, MhLength: -1}.Sum(data)
	require.NoError(t, err)
	return c
}

func encode(t *testing.T, enc func(datamodel.Node, io.Writer) error, n datamodel.Node) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, enc(n, &buf))
	return buf.Bytes()
}

// A dag-cbor root linking to a dag-json node, a raw block, an identity block and a blake2b block:
// held, listed, exported whole, kept by gc, and cat says it is not a file.
func TestCARDagCBORAndIdentity(t *testing.T) {
	leaf := []byte("a raw leaf")
	leafCID := sum(t, cid.Raw, mh.SHA2_256, leaf)
	blake := []byte("hashed with blake2b-256")
	blakeCID := sum(t, cid.Raw, mh.BLAKE2B_MIN+31, blake)
	ident := []byte("inline")
	identCID := sum(t, cid.Raw, mh.IDENTITY, ident)
	jsonNode, err := qp.BuildMap(basicnode.Prototype.Any, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "name", qp.String("a dag-json node"))
		qp.MapEntry(ma, "leaf", qp.Link(cidlink.Link{Cid: leafCID}))
	})
	require.NoError(t, err)
	jsonData := encode(t, dagjson.Encode, jsonNode)
	jsonCID := sum(t, cid.DagJSON, mh.SHA2_256, jsonData)
	rootNode, err := qp.BuildMap(basicnode.Prototype.Any, 3, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "json", qp.Link(cidlink.Link{Cid: jsonCID}))
		qp.MapEntry(ma, "list", qp.List(2, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: identCID}))
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: blakeCID}))
		}))
		qp.MapEntry(ma, "leaf again", qp.Link(cidlink.Link{Cid: leafCID}))
	})
	require.NoError(t, err)
	rootData := encode(t, dagcbor.Encode, rootNode)
	root := sum(t, cid.DagCBOR, mh.SHA2_256, rootData)
	blocks := []carBlock{{root, rootData}, {jsonCID, jsonData}, {leafCID, leaf}, {identCID, ident}, {blakeCID, blake}}

	s := open(t, newRepo(t))
	res := importCAR(t, s, goCARv1(t, []cid.Cid{root}, blocks))
	require.Equal(t, store.RootAdded, res.Roots[0].State)
	require.Equal(t, uint64(len(rootData)+len(jsonData)+len(leaf)+len(ident)+len(blake)), res.Roots[0].Size, "a DAG's size is its blocks' bytes")
	require.Equal(t, 4, res.New, "the identity block needs no storage")
	f, ok := s.File(root)
	require.True(t, ok)
	require.Equal(t, store.Complete, f.State)

	_, err = s.Cat(t.Context(), root)
	require.ErrorIs(t, err, unixfs.ErrNotFile)
	require.Contains(t, err.Error(), "is a dag-cbor (0x71) block, not a file")

	check := func() {
		t.Helper()
		roots, got, order := readCAR(t, export(t, s, root))
		require.Equal(t, []cid.Cid{root}, roots)
		require.Equal(t, []cid.Cid{root, jsonCID, leafCID, blakeCID}, order, "depth first, each once, identity left out")
		for _, b := range blocks[:3] {
			require.Equal(t, b.data, got[b.c.KeyString()])
		}
	}
	check()
	for _, b := range blocks {
		served, err := s.ServeBlock(t.Context(), b.c, nil)
		require.NoError(t, err, "peers get every block of a held DAG: %s", b.c)
		require.Equal(t, b.data, served)
	}
	gc, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, gc.Removed, "gc follows dag-cbor and dag-json links")
	check()
	data, err := s.GetBlock(t.Context(), identCID)
	require.NoError(t, err)
	require.Equal(t, ident, data)

	require.NoError(t, s.Remove(root))
	gc, err = s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 4, gc.Removed)
}

// A CAR whose root is an identity CID needs no block: the root is held at once, and exports
// to a CAR with no section.
func TestCARIdentityRoot(t *testing.T) {
	n, err := qp.BuildMap(basicnode.Prototype.Any, 1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "inline", qp.Bool(true))
	})
	require.NoError(t, err)
	data := encode(t, dagcbor.Encode, n)
	root := sum(t, cid.DagCBOR, mh.IDENTITY, data)
	s := open(t, newRepo(t))
	res := importCAR(t, s, goCARv1(t, []cid.Cid{root}, nil))
	require.Equal(t, []store.ImportedRoot{{CID: root.String(), State: store.RootAdded, Size: uint64(len(data))}}, res.Roots)
	roots, blocks, _ := readCAR(t, export(t, s, root))
	require.Equal(t, []cid.Cid{root}, roots)
	require.Empty(t, blocks)
}

// Every hash function go-multihash can compute verifies; one it cannot is refused clearly.
func TestCAREveryHashFunction(t *testing.T) {
	var blocks []carBlock
	var names []string
	var unsupported uint64
	for code, name := range mh.Codes {
		data := []byte("hashed with " + name)
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: code, MhLength: -1}.Sum(data)
		if errors.Is(err, mh.ErrSumNotSupported) {
			unsupported = code
			continue
		}
		if err != nil || code == mh.IDENTITY {
			continue
		}
		blocks = append(blocks, carBlock{c, data})
		names = append(names, name)
	}
	sort.Strings(names)
	require.Subset(t, names, []string{"sha1", "sha2-256", "sha2-512", "sha3-256", "keccak-256", "blake2b-256", "blake2s-256", "blake3", "murmur3-x64-64"})
	s := open(t, newRepo(t))
	res := importCAR(t, s, goCARv1(t, nil, blocks))
	require.Equal(t, len(blocks), res.New, "%v", names)
	for _, b := range blocks {
		got, err := s.GetBlock(t.Context(), b.c)
		require.NoError(t, err, "%s", b.c)
		require.Equal(t, b.data, got)
	}

	require.NotZero(t, unsupported)
	fake, err := mh.Encode(make([]byte, 32), unsupported)
	require.NoError(t, err)
	c := cid.NewCidV1(cid.Raw, fake)
	_, err = s.ImportCAR(t.Context(), bytes.NewReader(goCARv1(t, []cid.Cid{c}, []carBlock{{c, []byte("x")}})))
	require.ErrorIs(t, err, store.ErrBadCAR)
	require.Contains(t, err.Error(), "which this node cannot compute to verify it")
}

// withIndex makes a CARv2 of a CARv1 with an index of records.
func withIndex(t *testing.T, v1 []byte, records []carindex.Record) []byte {
	t.Helper()
	idx, err := carindex.New(0x0401) // car-multihash-index-sorted, go-car's default
	require.NoError(t, err)
	require.NoError(t, idx.Load(records))
	var ib bytes.Buffer
	_, err = carindex.WriteTo(idx, &ib)
	require.NoError(t, err)
	h := carv2.NewHeader(uint64(len(v1)))
	h.IndexOffset = h.DataOffset + h.DataSize
	var out bytes.Buffer
	out.Write(carv2.Pragma)
	_, err = h.WriteTo(&out)
	require.NoError(t, err)
	out.Write(v1)
	out.Write(ib.Bytes())
	return out.Bytes()
}

// sections reads where each block of a CARv1 is, with go-car.
func sections(t *testing.T, v1 []byte) []carindex.Record {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(v1))
	require.NoError(t, err)
	var out []carindex.Record
	for {
		m, err := br.SkipNext()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, carindex.Record{Cid: m.Cid, Offset: m.Offset})
	}
}

// Each kind of bad input is refused with a clear error, records nothing, and leaves no block
// behind but those a held file needs.
func TestCARBadInputIsRefusedAndLeavesNothing(t *testing.T) {
	data := randomBytes(26, 1<<20+99)
	root, blocks := boxoFile(t, data, 256<<10, false)
	const heldLen = 256 << 10 // the first leaf of data: a held file shares it
	good := goCARv1(t, []cid.Cid{root}, blocks)
	recs := sections(t, good)

	mismatch := append([]carBlock{}, blocks...)
	mismatch[len(mismatch)-1] = carBlock{blocks[len(blocks)-1].c, []byte("other bytes")}
	big := bytes.Repeat([]byte{7}, unixfs.MaxBlockSize+1)
	lying := append([]carindex.Record{}, recs...)
	lying[1].Offset++
	extra := append(append([]carindex.Record{}, recs...), carindex.Record{Cid: blocks[0].c, Offset: 3})
	missing := append([]carindex.Record{}, recs[:len(recs)-1]...)
	oversized := append(bytes.Clone(good), binary.AppendUvarint(nil, 64<<20)...)
	oversized = append(oversized, 1, 2, 3)
	gitRaw := sum(t, 0x78, mh.SHA2_256, []byte("tree"))
	v2 := withIndex(t, good, recs)
	// A CARv2 whose data ends at a section boundary before the size its header gives.
	var v2cut bytes.Buffer
	v2cut.Write(carv2.Pragma)
	h := carv2.NewHeader(uint64(len(good)))
	_, err := h.WriteTo(&v2cut)
	require.NoError(t, err)
	v2cut.Write(good[:recs[len(recs)-1].Offset])

	cases := map[string]struct {
		car  []byte
		want string
	}{
		"not a CAR":         {[]byte("hello, this is not a CAR"), "it does not start with a CAR header"},
		"truncated":         {good[:len(good)-1000], "truncated"},
		"mismatch":          {goCARv1(t, []cid.Cid{root}, mismatch), "does not match its CID"},
		"oversized section": {oversized, "is 67108864 bytes, more than a block"},
		"oversized block":   {goCARv1(t, []cid.Cid{root}, append(blocks, carBlock{sum(t, cid.Raw, mh.SHA2_256, big), big})), "more than the 2097152 a block may have"},
		"unknown codec":     {goCARv1(t, []cid.Cid{root}, append(blocks, carBlock{gitRaw, []byte("tree")})), "codec not supported: git-raw (0x78)"},
		"bad dag-cbor":      {goCARv1(t, []cid.Cid{root}, append(blocks, carBlock{sum(t, cid.DagCBOR, mh.SHA2_256, []byte{0xff}), []byte{0xff}})), "is not valid dag-cbor"},
		"index off by one":  {withIndex(t, good, lying), "the index lies"},
		"index extra entry": {withIndex(t, good, extra), "the index lies"},
		"index omits one":   {withIndex(t, good, missing), "the index lies"},
		"v2 data cut short": {v2cut.Bytes(), "truncated"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := open(t, newRepo(t))
			f, err := s.Add(t.Context(), bytes.NewReader(data[:heldLen]), "held", store.AddOptions{ChunkSize: 256 << 10})
			require.NoError(t, err)
			var before []store.Event
			require.NoError(t, s.Events(0, func(e store.Event) error { before = append(before, e); return nil }))

			_, err = s.ImportCAR(t.Context(), bytes.NewReader(tc.car))
			require.ErrorIs(t, err, store.ErrBadCAR)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "\n")

			var after []store.Event
			require.NoError(t, s.Events(0, func(e store.Event) error { after = append(after, e); return nil }))
			require.Equal(t, before, after, "nothing recorded")
			gc, err := s.GC(t.Context())
			require.NoError(t, err)
			require.Zero(t, gc.Removed, "the failed import removed the blocks it wrote")
			require.Equal(t, 1, gc.Kept, "but not the block the held file needs")
			require.Equal(t, data[:heldLen], catAll(t, s, f.Root))
		})
	}

	// The same CARv2 with a true index imports.
	s := open(t, newRepo(t))
	res := importCAR(t, s, v2)
	require.Equal(t, 2, res.Version)
	require.Equal(t, data, catAll(t, s, root))
}

// Export refuses a DAG the repo does not hold whole, before writing anything.
func TestCARExportNeedsTheWholeDAG(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	data := randomBytes(28, 1<<20)
	f, err := s.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{ChunkSize: 256 << 10})
	require.NoError(t, err)
	_, blocks := boxoFile(t, data, 256<<10, false)
	leaf := blocks[1].c.String()
	require.NoError(t, os.Remove(filepath.Join(dir, "blocks", leaf[len(leaf)-3:len(leaf)-1], leaf)))

	var buf bytes.Buffer
	_, err = s.Export(t.Context(), f.Root, &buf)
	require.ErrorIs(t, err, store.ErrIncomplete)
	require.Contains(t, err.Error(), leaf)
	require.Zero(t, buf.Len())

	_, err = s.Export(t.Context(), sum(t, cid.Raw, mh.SHA2_256, []byte("nobody")), &buf)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Zero(t, buf.Len())
}

// FuzzImportCAR feeds hostile bytes to ImportCAR: it never panics, and input it refuses leaves
// no event and no file.
func FuzzImportCAR(f *testing.F) {
	leaf := []byte("leaf")
	f.Add([]byte("not a CAR"))
	f.Add(append(append([]byte{}, carv2.Pragma...), make([]byte, 40)...))
	for _, seed := range fuzzSeeds(f, leaf) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, car []byte) {
		s := open(t, newRepo(t))
		res, err := s.ImportCAR(t.Context(), bytes.NewReader(car))
		n := 0
		require.NoError(t, s.Events(0, func(store.Event) error { n++; return nil }))
		if err != nil {
			require.Zero(t, n, "a refused CAR records nothing")
			require.Empty(t, s.Files())
			return
		}
		added := 0
		for _, r := range res.Roots {
			if r.State == store.RootAdded {
				added++
			}
		}
		require.Equal(t, added, n)
	})
}

// fuzzSeeds are small valid CARs: v1 and v2 (indexed) of a raw block under a dag-cbor root.
func fuzzSeeds(f *testing.F, leaf []byte) [][]byte {
	leafCID, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(leaf)
	require.NoError(f, err)
	n, err := qp.BuildMap(basicnode.Prototype.Any, 1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "leaf", qp.Link(cidlink.Link{Cid: leafCID}))
	})
	require.NoError(f, err)
	var enc bytes.Buffer
	require.NoError(f, dagcbor.Encode(n, &enc))
	root, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(enc.Bytes())
	require.NoError(f, err)
	var v1 bytes.Buffer
	w, err := storage.NewWritable(&v1, []cid.Cid{root}, carv2.WriteAsCarV1(true))
	require.NoError(f, err)
	require.NoError(f, w.Put(context.Background(), root.KeyString(), enc.Bytes()))
	require.NoError(f, w.Put(context.Background(), leafCID.KeyString(), leaf))
	br, err := carv2.NewBlockReader(bytes.NewReader(v1.Bytes()))
	require.NoError(f, err)
	var recs []carindex.Record
	for {
		m, err := br.SkipNext()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(f, err)
		recs = append(recs, carindex.Record{Cid: m.Cid, Offset: m.Offset})
	}
	idx, err := carindex.New(0x0401)
	require.NoError(f, err)
	require.NoError(f, idx.Load(recs))
	var out bytes.Buffer
	h := carv2.NewHeader(uint64(v1.Len()))
	h.IndexOffset = h.DataOffset + h.DataSize
	out.Write(carv2.Pragma)
	_, err = h.WriteTo(&out)
	require.NoError(f, err)
	out.Write(v1.Bytes())
	_, err = carindex.WriteTo(idx, &out)
	require.NoError(f, err)
	return [][]byte{v1.Bytes(), out.Bytes()}
}
