package unixfs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	bunixfs "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

var v1Builder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}

// boxoDir returns a directory of boxo's builder set up as `ipfs add` sets it up
// under the unixfs-v1-2025 profile.
func boxoDir(t testing.TB, dag *memDAG) uio.Directory {
	t.Helper()
	p := uio.UnixFS_v1_2025
	d, err := uio.NewDirectory(dag,
		uio.WithCidBuilder(v1Builder),
		uio.WithSizeEstimationMode(p.HAMTSizeEstimation),
		uio.WithMaxHAMTFanout(p.HAMTShardWidth),
	)
	require.NoError(t, err)
	require.Equal(t, p.HAMTShardingSize, uio.HAMTShardingSize, "boxo's global threshold is the profile's")
	return d
}

// boxoTree imports path with boxo as `ipfs add -r` does: files with the
// balanced layout (raw leaves, chunkSize), directories with boxo's directory
// builder, symbolic links as Symlink nodes. It returns the root node.
func boxoTree(t testing.TB, dag *memDAG, path string, chunkSize int, hidden bool) format.Node {
	t.Helper()
	ctx := context.Background()
	st, err := os.Lstat(path)
	require.NoError(t, err)
	switch {
	case st.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(path)
		require.NoError(t, err)
		data, err := bunixfs.SymlinkData(target)
		require.NoError(t, err)
		n := mdag.NodeWithData(data)
		require.NoError(t, n.SetCidBuilder(v1Builder))
		require.NoError(t, dag.Add(ctx, n))
		return n
	case st.IsDir():
		d := boxoDir(t, dag)
		des, err := os.ReadDir(path)
		require.NoError(t, err)
		for _, de := range des {
			if !hidden && strings.HasPrefix(de.Name(), ".") {
				continue
			}
			child := boxoTree(t, dag, filepath.Join(path, de.Name()), chunkSize, hidden)
			require.NoError(t, d.AddChild(ctx, de.Name(), child))
		}
		n, err := d.GetNode()
		require.NoError(t, err)
		require.NoError(t, dag.Add(ctx, n))
		return n
	default:
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		if chunkSize == 0 {
			chunkSize = unixfs.DefaultChunkSize
		}
		params := helpers.DagBuilderParams{Maxlinks: unixfs.MaxLinks, RawLeaves: true, CidBuilder: v1Builder, Dagserv: dag}
		db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), int64(chunkSize)))
		require.NoError(t, err)
		n, err := balanced.Layout(db)
		require.NoError(t, err)
		return n
	}
}

// ourTree imports path with ImportTree and returns the result and the blocks.
func ourTree(t testing.TB, path string, chunkSize int, hidden bool) (unixfs.TreeResult, map[cid.Cid][]byte, []cid.Cid) {
	t.Helper()
	blocks := map[cid.Cid][]byte{}
	var order []cid.Cid
	var mu sync.Mutex // put is called concurrently
	opts := unixfs.TreeOptions{ImportOptions: unixfs.ImportOptions{ChunkSize: chunkSize}, Hidden: hidden}
	res, err := unixfs.ImportTree(t.Context(), path, opts, func(b unixfs.Block) error {
		mu.Lock()
		defer mu.Unlock()
		blocks[b.Cid] = bytes.Clone(b.Data)
		order = append(order, b.Cid)
		return nil
	})
	require.NoError(t, err)
	return res, blocks, order
}

// requireSameTree checks that ImportTree gives the root and every block boxo
// gives for the tree at path, and that no block is passed on before the blocks
// it links.
func requireSameTree(t *testing.T, path string, chunkSize int, hidden bool) unixfs.TreeResult {
	t.Helper()
	dag := newMemDAG()
	want := boxoTree(t, dag, path, chunkSize, hidden)
	res, got, order := ourTree(t, path, chunkSize, hidden)
	require.Equal(t, want.Cid().String(), res.Root.String(), "root CID")
	wantBlocks := map[cid.Cid][]byte{}
	for _, b := range dag.added {
		wantBlocks[b.Cid] = b.Data
	}
	require.Equal(t, len(wantBlocks), len(got), "distinct blocks")
	for c, data := range wantBlocks {
		g, ok := got[c] // not require.Contains: it scans the map by reflection for every block
		require.True(t, ok, "block %s missing", c)
		require.True(t, bytes.Equal(data, g), "block %s bytes differ", c)
	}
	require.Equal(t, res.Root, order[len(order)-1], "root stored last")
	requireChildrenFirst(t, got, order)
	return res
}

// requireChildrenFirst checks that every dag-pb block's links were stored
// before it.
func requireChildrenFirst(t *testing.T, blocks map[cid.Cid][]byte, order []cid.Cid) {
	t.Helper()
	seen := map[cid.Cid]bool{}
	for _, c := range order {
		if c.Type() == cid.DagProtobuf {
			n, err := unixfs.DecodePB(blocks[c])
			require.NoError(t, err)
			for _, l := range n.Links {
				if _, ours := blocks[l.Cid]; !ours {
					continue // a given entry's block
				}
				require.True(t, seen[l.Cid], "%s stored before its child %s", c, l.Cid)
			}
		}
		seen[c] = true
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func TestTreeMatchesBoxoNested(t *testing.T) {
	root := filepath.Join(t.TempDir(), "album")
	writeFile(t, filepath.Join(root, "a.txt"), []byte("hello world"))
	writeFile(t, filepath.Join(root, "empty"), nil)
	writeFile(t, filepath.Join(root, "big.bin"), randomBytes(1, 300*256+17)) // two levels at 256-byte chunks
	writeFile(t, filepath.Join(root, "sub", "dir", "deep.txt"), []byte("deep"))
	writeFile(t, filepath.Join(root, "sub", "Zebra"), []byte("Z sorts before a"))
	writeFile(t, filepath.Join(root, "sub", "zebra"), []byte("z"))
	writeFile(t, filepath.Join(root, "日本語", "ファイル.txt"), []byte("unicode"))
	writeFile(t, filepath.Join(root, "Ünïcödé ✓", "émoji 🎉.md"), []byte("# hi"))
	writeFile(t, filepath.Join(root, "same1"), []byte("same"))
	writeFile(t, filepath.Join(root, "same2"), []byte("same"))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "empty-dir"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "sub", "empty", "emptier"), 0o755))
	res := requireSameTree(t, root, 256, false)
	require.True(t, res.Dir)
	require.Equal(t, uint64(10), res.Files)
	require.Equal(t, uint64(11+300*256+17+4+16+1+7+4+4+4), res.Size)
}

func TestEmptyDirectoryCID(t *testing.T) {
	res, blocks, _ := ourTree(t, t.TempDir(), 0, false)
	// `ipfs add -r --cid-version=1` of an empty directory.
	require.Equal(t, "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354", res.Root.String())
	require.Len(t, blocks, 1)
	require.Zero(t, res.Files)
}

func TestTreeMatchesBoxoSymlinks(t *testing.T) {
	root := filepath.Join(t.TempDir(), "links")
	writeFile(t, filepath.Join(root, "target.txt"), []byte("target"))
	writeFile(t, filepath.Join(root, "d", "f"), []byte("f"))
	for name, target := range map[string]string{
		"rel":      "target.txt",
		"abs":      "/etc/hostname",
		"dangling": "no/such/file",
		"to-dir":   "d",
		"d/up":     "../target.txt",
		"loop":     "loop",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(root, name)))
	}
	res := requireSameTree(t, root, 0, false)
	require.Equal(t, uint64(2), res.Files, "links are not followed")
}

func TestTreeMatchesBoxoHidden(t *testing.T) {
	root := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(root, "main.go"), []byte("package main"))
	writeFile(t, filepath.Join(root, ".env"), []byte("SECRET=1"))
	writeFile(t, filepath.Join(root, ".git", "HEAD"), []byte("ref: refs/heads/main"))
	writeFile(t, filepath.Join(root, "sub", ".hidden"), []byte("h"))
	writeFile(t, filepath.Join(root, "sub", "shown"), []byte("s"))
	without := requireSameTree(t, root, 0, false)
	with := requireSameTree(t, root, 0, true)
	require.NotEqual(t, without.Root, with.Root)
	require.Equal(t, uint64(2), without.Files)
	require.Equal(t, uint64(5), with.Files)
}

func TestTreeMatchesBoxoSharded6000(t *testing.T) {
	root := filepath.Join(t.TempDir(), "many")
	require.NoError(t, os.MkdirAll(root, 0o755))
	for i := range 6000 {
		name := fmt.Sprintf("photo-%05d-with-a-longer-name-to-pass-the-threshold.jpg", i)
		require.NoError(t, os.WriteFile(filepath.Join(root, name), fmt.Appendf(nil, "%d", i), 0o644))
	}
	dag := newMemDAG()
	want := boxoTree(t, dag, root, 0, false)
	fs, err := bunixfs.FSNodeFromBytes(want.(*mdag.ProtoNode).Data())
	require.NoError(t, err)
	require.Equal(t, bunixfs.THAMTShard, fs.Type(), "boxo shards this folder")
	res := requireSameTree(t, root, 0, false)
	require.Equal(t, uint64(6000), res.Files)
	// Pinned, as computed by boxo v0.41.0, so that a change in boxo and here
	// at once cannot go unnoticed.
	require.Equal(t, "bafybeig47a67mympru5q3ortho2rza3r4etrpee52qsb7fpnsvoyymf65q", res.Root.String())
}

// syntheticEntries returns n entries with names of the same length, each
// linking a distinct raw block, and the boxo nodes for them.
func syntheticEntries(n, nameLen int) ([]unixfs.DirEntry, []format.Node) {
	entries := make([]unixfs.DirEntry, n)
	nodes := make([]format.Node, n)
	for i := range n {
		nd := mdag.NewRawNode(fmt.Appendf(nil, "content %d", i))
		name := fmt.Sprintf("%0*d", nameLen, i)
		entries[i] = unixfs.DirEntry{Name: name, Cid: nd.Cid(), Tsize: uint64(len(nd.RawData()))}
		nodes[i] = nd
	}
	return entries, nodes
}

// requireSameDirectory builds entries with BuildDirectory and with boxo's
// builder, and compares roots and every block.
func requireSameDirectory(t *testing.T, entries []unixfs.DirEntry, children []format.Node) unixfs.DirResult {
	t.Helper()
	dag := newMemDAG()
	d := boxoDir(t, dag)
	for i, e := range entries {
		require.NoError(t, d.AddChild(t.Context(), e.Name, children[i]))
	}
	want, err := d.GetNode()
	require.NoError(t, err)
	require.NoError(t, dag.Add(t.Context(), want))

	got := map[cid.Cid][]byte{}
	var order []cid.Cid
	res, err := unixfs.BuildDirectory(append([]unixfs.DirEntry(nil), entries...), func(b unixfs.Block) error {
		got[b.Cid] = bytes.Clone(b.Data)
		order = append(order, b.Cid)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, want.Cid().String(), res.Root.String())
	size, err := want.Size()
	require.NoError(t, err)
	require.Equal(t, size, res.Tsize, "cumulative size")
	require.Equal(t, len(order), res.Blocks)
	nodes := 0
	for c, n := range dag.blocks {
		if c.Type() == cid.DagProtobuf { // boxo's HAMT also stores the entries' blocks
			require.True(t, bytes.Equal(n.RawData(), got[c]), "block %s", c)
			nodes++
		}
	}
	require.Len(t, got, nodes)
	requireChildrenFirst(t, got, order)
	return res
}

// TestDirectoryShardingThreshold builds the largest plain directory there is
// with entries of one size, then pads one name until the node is exactly
// HAMTShardingSize bytes (still plain), then one byte more (sharded).
func TestDirectoryShardingThreshold(t *testing.T) {
	const nameLen = 20
	entries, _ := syntheticEntries(1, nameLen)
	plain := func(es []unixfs.DirEntry) int { // encoded size of the plain node
		n := unixfs.PBNode{Data: unixfs.FSData{Type: unixfs.Directory}.Encode()}
		for _, e := range es {
			n.Links = append(n.Links, unixfs.Link{Cid: e.Cid, Name: e.Name, Tsize: e.Tsize})
		}
		return len(unixfs.EncodePB(n))
	}
	perLink := plain(entries) - 4
	n := (unixfs.HAMTShardingSize - 4) / perLink
	entries, nodes := syntheticEntries(n, nameLen)
	require.LessOrEqual(t, plain(entries), unixfs.HAMTShardingSize)

	t.Run("below", func(t *testing.T) {
		require.False(t, requireSameDirectory(t, entries, nodes).Sharded)
	})
	t.Run("above", func(t *testing.T) {
		more, moreNodes := syntheticEntries(n+1, nameLen)
		require.Greater(t, plain(more), unixfs.HAMTShardingSize)
		require.True(t, requireSameDirectory(t, more, moreNodes).Sharded)
	})
	gap := unixfs.HAMTShardingSize - plain(entries)
	require.Less(t, gap, perLink)
	padded := append([]unixfs.DirEntry(nil), entries...)
	last := &padded[len(padded)-1]
	t.Run("exactly at", func(t *testing.T) {
		last.Name += strings.Repeat("x", gap) // name lengths stay under 128: one-byte varints
		require.Equal(t, unixfs.HAMTShardingSize, plain(padded))
		require.False(t, requireSameDirectory(t, padded, nodes).Sharded)
	})
	t.Run("one byte over", func(t *testing.T) {
		last.Name += "x"
		require.Equal(t, unixfs.HAMTShardingSize+1, plain(padded))
		require.True(t, requireSameDirectory(t, padded, nodes).Sharded)
	})
}

func TestBuildDirectoryRefusesBadNames(t *testing.T) {
	entries, _ := syntheticEntries(2, 3)
	for _, name := range []string{"", ".", "..", "a/b", `a\b`, "a\x00b", "a\nb", "\x7f", strings.Repeat("n", 256)} {
		es := append([]unixfs.DirEntry(nil), entries...)
		es[0].Name = name
		_, err := unixfs.BuildDirectory(es, nil)
		require.Error(t, err, "%q", name)
	}
	es := append([]unixfs.DirEntry(nil), entries...)
	es[1].Name = es[0].Name
	_, err := unixfs.BuildDirectory(es, nil)
	require.ErrorContains(t, err, "duplicate")
	es[1].Name = strings.Repeat("n", 255)
	_, err = unixfs.BuildDirectory(es, nil)
	require.NoError(t, err, "255 bytes is allowed")
}

// Files of one chunk or less are hashed in one read (treeImporter.small); at a chunk and one
// byte more they go through Import. Both match boxo at the boundary.
func TestTreeMatchesBoxoAtChunkSize(t *testing.T) {
	root := filepath.Join(t.TempDir(), "edge")
	writeFile(t, filepath.Join(root, "chunk-1"), randomBytes(2, 255))
	writeFile(t, filepath.Join(root, "chunk"), randomBytes(3, 256))
	writeFile(t, filepath.Join(root, "chunk+1"), randomBytes(4, 257))
	writeFile(t, filepath.Join(root, "one"), []byte{1})
	res := requireSameTree(t, root, 256, false)
	require.Equal(t, uint64(4), res.Files)
	require.Equal(t, uint64(255+256+257+1), res.Size)
}
