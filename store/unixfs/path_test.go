package unixfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// treeGetter imports path and serves its blocks.
func treeGetter(t *testing.T, path string, hidden bool) (unixfs.TreeResult, *blockGetter) {
	t.Helper()
	res, blocks, _ := ourTree(t, path, 0, hidden)
	g := &blockGetter{blocks: blocks}
	return res, g
}

func fileCID(t *testing.T, data []byte) cid.Cid {
	t.Helper()
	res, err := unixfs.Import(t.Context(), bytes.NewReader(data), unixfs.ImportOptions{}, nil)
	require.NoError(t, err)
	return res.Root
}

func TestResolvePlainAndSharded(t *testing.T) {
	root := filepath.Join(t.TempDir(), "r")
	writeFile(t, filepath.Join(root, "sub", "dir", "file.txt"), []byte("the file"))
	writeFile(t, filepath.Join(root, "top.txt"), []byte("top"))
	many := filepath.Join(root, "many")
	for i := range 5000 {
		writeFile(t, filepath.Join(many, fmt.Sprintf("entry-%05d-padding-padding-padding.txt", i)), fmt.Appendf(nil, "n%d", i))
	}
	require.NoError(t, os.Symlink("top.txt", filepath.Join(root, "link")))
	res, g := treeGetter(t, root, false)
	ctx := t.Context()

	got, err := unixfs.Resolve(ctx, res.Root, []string{"sub", "dir", "file.txt"}, g.get)
	require.NoError(t, err)
	require.Equal(t, fileCID(t, []byte("the file")), got)

	// Through the HAMT, every entry.
	manyCID, err := unixfs.Resolve(ctx, res.Root, []string{"many"}, g.get)
	require.NoError(t, err)
	block, err := g.get(ctx, manyCID)
	require.NoError(t, err)
	d, err := unixfs.ParseDir(manyCID, block, 0, 0)
	require.NoError(t, err)
	require.True(t, d.Sharded, "5000 entries are sharded")
	for _, i := range []int{0, 1, 42, 2500, 4999} {
		c, err := unixfs.Resolve(ctx, res.Root, []string{"many", fmt.Sprintf("entry-%05d-padding-padding-padding.txt", i)}, g.get)
		require.NoError(t, err)
		require.Equal(t, fileCID(t, fmt.Appendf(nil, "n%d", i)), c)
	}
	entries, err := unixfs.ListDir(ctx, manyCID, g.get)
	require.NoError(t, err)
	require.Len(t, entries, 5000)
	for i, e := range entries {
		require.Equal(t, fmt.Sprintf("entry-%05d-padding-padding-padding.txt", i), e.Name)
	}

	_, err = unixfs.Resolve(ctx, res.Root, []string{"many", "absent"}, g.get)
	require.ErrorIs(t, err, unixfs.ErrNoEntry)
	_, err = unixfs.Resolve(ctx, res.Root, []string{"nope"}, g.get)
	require.ErrorIs(t, err, unixfs.ErrNoEntry)
	_, err = unixfs.Resolve(ctx, res.Root, []string{"top.txt", "x"}, g.get)
	require.ErrorIs(t, err, unixfs.ErrNotDir)
	_, err = unixfs.Resolve(ctx, res.Root, []string{"link", "x"}, g.get)
	require.ErrorIs(t, err, unixfs.ErrNotDir, "a symlink is not walked through")

	// The root listing, with kinds.
	top, err := unixfs.ListDir(ctx, res.Root, g.get)
	require.NoError(t, err)
	var names []string
	for _, e := range top {
		names = append(names, e.Name)
	}
	require.Equal(t, []string{"link", "many", "sub", "top.txt"}, names)
	kinds := map[string]unixfs.DataType{}
	for _, e := range top {
		b, err := g.get(ctx, e.Cid)
		require.NoError(t, err)
		k, _, err := unixfs.Inspect(e.Cid, b)
		require.NoError(t, err)
		kinds[e.Name] = k
	}
	require.Equal(t, map[string]unixfs.DataType{"link": unixfs.Symlink, "many": unixfs.Directory, "sub": unixfs.Directory, "top.txt": unixfs.File}, kinds)

	// A file found by path reads back.
	r := unixfs.NewReader(ctx, got, g.get)
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Equal(t, "the file", string(data))
}

func TestParsePath(t *testing.T) {
	c := fileCID(t, []byte("x"))
	for _, s := range []string{c.String(), "/ipfs/" + c.String(), c.String() + "/", "/ipfs/" + c.String() + "//a/b/"} {
		got, _, err := unixfs.ParsePath(s)
		require.NoError(t, err, s)
		require.Equal(t, c, got)
	}
	_, names, err := unixfs.ParsePath("/ipfs/" + c.String() + "/a//b/ü.txt")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "ü.txt"}, names)
	for _, s := range []string{"", "/ipns/" + c.String(), "/" + c.String(), "nocid/a", c.String() + "/../x", c.String() + "/./x",
		c.String() + strings.Repeat("/a", unixfs.MaxPathSegments+1)} {
		_, _, err := unixfs.ParsePath(s)
		require.Error(t, err, s)
	}
}

// craft stores a dag-pb node with the given links and UnixFS data and returns
// its CID.
func craft(g *blockGetter, links []unixfs.Link, data unixfs.FSData) cid.Cid {
	b := unixfs.EncodePB(unixfs.PBNode{Links: links, Data: data.Encode()})
	return g.putRaw(cid.DagProtobuf, b)
}

func (g *blockGetter) putRaw(codec uint64, b []byte) cid.Cid {
	sum := sha256.Sum256(b)
	c := cid.NewCidV1(codec, append([]byte{0x12, 32}, sum[:]...))
	g.mu.Lock()
	g.blocks[c] = b
	g.mu.Unlock()
	return c
}

// hamtSlotOf mirrors the package's: the slot of name at depth d.
func hamtSlotOf(name string, d int) int {
	return int(unixfs.HAMTHash(name) >> (56 - 8*d) & 0xff)
}

func bitfield(slots ...int) []byte {
	var bf [32]byte
	for _, s := range slots {
		bf[31-s/8] |= 1 << (s % 8)
	}
	b := bf[:]
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func shardData(slots ...int) unixfs.FSData {
	return unixfs.FSData{Type: unixfs.HAMTShard, Data: bitfield(slots...), HashType: unixfs.HashMurmur3, Fanout: unixfs.HAMTFanout}
}

// TestHostileDirectories crafts directories as a malicious peer would serve
// them: each is refused with a clear error and no panic, by Lookup, ListDir
// and Resolve alike.
func TestHostileDirectories(t *testing.T) {
	g := &blockGetter{blocks: map[cid.Cid][]byte{}}
	leaf := g.putRaw(cid.Raw, []byte("leaf"))
	dirOf := func(names ...string) cid.Cid {
		var links []unixfs.Link
		for _, n := range names {
			links = append(links, unixfs.Link{Cid: leaf, Name: n, Tsize: 4})
		}
		return craft(g, links, unixfs.FSData{Type: unixfs.Directory})
	}
	slotName := func(name string) string { return fmt.Sprintf("%02X", hamtSlotOf(name, 0)) + name }

	// Two names in the same root slot, to build sub-shards.
	var a, b string
	seen := map[int]string{}
	for i := 0; a == ""; i++ {
		n := fmt.Sprintf("n%d", i)
		s := hamtSlotOf(n, 0)
		if o, ok := seen[s]; ok && hamtSlotOf(o, 1) != hamtSlotOf(n, 1) {
			a, b = o, n
		}
		seen[s] = n
	}
	s0 := hamtSlotOf(a, 0)
	sa, sb := hamtSlotOf(a, 1), hamtSlotOf(b, 1)
	first, second := a, b
	if sb < sa {
		first, second = b, a
	}
	goodSub := craft(g, []unixfs.Link{
		{Cid: leaf, Name: fmt.Sprintf("%02X", min(sa, sb)) + first, Tsize: 4},
		{Cid: leaf, Name: fmt.Sprintf("%02X", max(sa, sb)) + second, Tsize: 4},
	}, shardData(sa, sb))
	goodRoot := craft(g, []unixfs.Link{{Cid: goodSub, Name: fmt.Sprintf("%02X", s0), Tsize: 100}}, shardData(s0))
	for _, n := range []string{a, b} {
		c, err := unixfs.Resolve(t.Context(), goodRoot, []string{n}, g.get)
		require.NoError(t, err, "the well-formed HAMT resolves")
		require.Equal(t, leaf, c)
	}

	// Shards nested nine deep, each with two child shards: only the depth
	// bound stops the walk.
	deep := dirOf("x")
	for range 9 {
		deep = craft(g, []unixfs.Link{{Cid: deep, Name: "00", Tsize: 1}, {Cid: deep, Name: "01", Tsize: 1}}, shardData(0, 1))
	}

	cases := []struct {
		name string
		dir  cid.Cid
		want string
	}{
		{"empty name", dirOf("ok", ""), "empty name"},
		{"dot", dirOf("."), `"."`},
		{"dotdot", dirOf(".."), `".."`},
		{"slash", dirOf("a/b"), `contains '/'`},
		{"absolute", dirOf("/etc"), `contains '/'`},
		{"backslash", dirOf(`a\b`), `contains '\\'`},
		{"NUL", dirOf("a\x00b"), "control character 0x00"},
		{"newline", dirOf("a\nb"), "control character 0x0a"},
		{"DEL", dirOf("a\x7f"), "control character 0x7f"},
		{"too long", dirOf(strings.Repeat("n", 256)), "over 255"},
		{"duplicate", dirOf("x", "y", "x"), `"x": duplicate name`},
		{"not a directory", craft(g, nil, unixfs.FSData{Type: unixfs.Symlink, Data: []byte("t")}), "not a directory"},
		{"hash function", craft(g, nil, unixfs.FSData{Type: unixfs.HAMTShard, HashType: 0x12, Fanout: 256}), "hash function 0x12"},
		{"fanout", craft(g, nil, unixfs.FSData{Type: unixfs.HAMTShard, HashType: unixfs.HashMurmur3, Fanout: 16}), "fanout 16"},
		{"bitfield count", craft(g, []unixfs.Link{{Cid: leaf, Name: slotName(a), Tsize: 4}}, shardData(s0, s0+1)), "2 slots set but the node has 1 links"},
		{"bitfield too long", craft(g, nil, unixfs.FSData{Type: unixfs.HAMTShard, Data: make([]byte, 33), HashType: unixfs.HashMurmur3, Fanout: 256}), "bitfield of 33 bytes"},
		{"wrong prefix", craft(g, []unixfs.Link{{Cid: leaf, Name: "zz" + a, Tsize: 4}}, shardData(s0)), "want the prefix"},
		{"wrong slot", craft(g, []unixfs.Link{{Cid: leaf, Name: fmt.Sprintf("%02X", (s0+1)%256) + a, Tsize: 4}}, shardData((s0+1)%256)), "not in the HAMT slot"},
		{"bad name in shard", craft(g, []unixfs.Link{{Cid: leaf, Name: "00..", Tsize: 4}}, shardData(0)), `".."`},
		{"raw child shard", craft(g, []unixfs.Link{{Cid: leaf, Name: "00", Tsize: 4}}, shardData(0)), "not dag-pb"},
		{"lonely sub-shard", craft(g, []unixfs.Link{{Cid: craft(g, []unixfs.Link{{Cid: leaf, Name: fmt.Sprintf("%02X", hamtSlotOf(a, 1)) + a}}, shardData(hamtSlotOf(a, 1))), Name: fmt.Sprintf("%02X", s0)}}, shardData(s0)), "below the root holds the single entry"},
		{"empty sub-shard", craft(g, []unixfs.Link{{Cid: craft(g, nil, shardData()), Name: fmt.Sprintf("%02X", s0)}}, shardData(s0)), "empty HAMT shard"},
		{"sub-shard entry off its prefix", craft(g, []unixfs.Link{{Cid: goodSub, Name: fmt.Sprintf("%02X", (s0+1)%256)}}, shardData((s0+1)%256)), "not in the HAMT slot"},
		{"plain directory in a shard", craft(g, []unixfs.Link{{Cid: dirOf("x"), Name: fmt.Sprintf("%02X", s0)}}, shardData(s0)), "plain directory inside a HAMT"},
		{"too deep", deep, "deeper than 8 levels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := unixfs.ListDir(t.Context(), tc.dir, g.get)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// Lookups through a broken shard fail the same way.
	_, err := unixfs.Lookup(t.Context(), cases[len(cases)-2].dir, a, g.get)
	require.ErrorContains(t, err, "plain directory inside a HAMT")
}

// TestShardWithOnlyAChildShard: two names whose hashes share their first 16
// bits make a shard whose only link is another shard. That is the shape boxo
// gives, and it is walked.
func TestShardWithOnlyAChildShard(t *testing.T) {
	var a, b string
	seen := map[uint64]string{}
	for i := 0; a == ""; i++ {
		n := fmt.Sprintf("twin-%d", i)
		h := unixfs.HAMTHash(n)
		if o, ok := seen[h>>48]; ok && hamtSlotOf(o, 2) != hamtSlotOf(n, 2) {
			a, b = o, n
		}
		seen[h>>48] = n
	}
	entries, nodes := syntheticEntries(4500, 50)
	twins, twinNodes := syntheticEntries(2, 1)
	twins[0].Name, twins[1].Name = a, b
	entries, nodes = append(entries, twins...), append(nodes, twinNodes...)
	res := requireSameDirectory(t, entries, nodes)
	require.True(t, res.Sharded)

	g := &blockGetter{blocks: map[cid.Cid][]byte{}}
	_, err := unixfs.BuildDirectory(entries, func(b unixfs.Block) error {
		g.putRaw(cid.DagProtobuf, bytes.Clone(b.Data))
		return nil
	})
	require.NoError(t, err)
	for _, tw := range twins {
		l, err := unixfs.Lookup(t.Context(), res.Root, tw.Name, g.get)
		require.NoError(t, err)
		require.Equal(t, tw.Cid, l.Cid)
	}
	all, err := unixfs.ListDir(t.Context(), res.Root, g.get)
	require.NoError(t, err)
	require.Len(t, all, 4502)
}

// TestResolveDepthBound: a directory nested deeper than MaxPathSegments
// cannot be walked by name.
func TestResolveDepthBound(t *testing.T) {
	g := &blockGetter{blocks: map[cid.Cid][]byte{}}
	c := g.putRaw(cid.Raw, []byte("x"))
	names := make([]string, unixfs.MaxPathSegments+1)
	for i := range names {
		names[i] = "d"
		c = craft(g, []unixfs.Link{{Cid: c, Name: "d", Tsize: 1}}, unixfs.FSData{Type: unixfs.Directory})
	}
	_, err := unixfs.Resolve(context.Background(), c, names, g.get)
	require.ErrorContains(t, err, "more than 256")
	_, err = unixfs.Resolve(context.Background(), c, names[:unixfs.MaxPathSegments], g.get)
	require.NoError(t, err)
}
