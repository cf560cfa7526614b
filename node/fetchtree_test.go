package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
)

// writeTestTree makes a folder with nested folders, an empty one, names in several scripts,
// a file of several blocks, and symbolic links (one pointing out of the tree, one nowhere).
func writeTestTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "album")
	files := map[string][]byte{
		"a/b/c.txt":          []byte("deep"),
		"a/two.txt":          []byte("two"),
		"ünïcødé 日本語.txt":    []byte("names in any script"),
		"Ελληνικά/пример.md": []byte("κείμενο"),
		"big.bin":            bytes.Repeat([]byte("0123456789abcdef"), 100_000), // 1.6 MB: several leaves
		"empty-file":         nil,
	}
	for p, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty", "inner-empty"), 0o755))
	require.NoError(t, os.Symlink("a/b/c.txt", filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink("../../../etc/passwd", filepath.Join(dir, "a", "escape")))
	return dir
}

// requireSameTree compares two trees entry by entry: the same names, kinds, file bytes and link
// targets (links compared as links, never followed), empty folders included.
func requireSameTree(t *testing.T, want, got string) {
	t.Helper()
	list := func(root string) map[string]string {
		out := map[string]string{}
		require.NoError(t, filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			require.NoError(t, err)
			rel, err := filepath.Rel(root, p)
			require.NoError(t, err)
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				require.NoError(t, err)
				out[rel] = "link:" + target
			case e.IsDir():
				out[rel] = "dir"
			case e.Type().IsRegular():
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				out[rel] = "file:" + string(b)
			default:
				t.Fatalf("%s: unexpected kind %v", p, e.Type())
			}
			return nil
		}))
		return out
	}
	require.Equal(t, list(want), list(got))
}

// A folder fetched from a peer that added it is recreated as it was (files, empty folders,
// symlinks as links, names in any script), recorded as one held folder, and served onward: a
// third node fetches it too.
func TestFetchOfAFolderRecreatesTheTree(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	src := writeTestTree(t)
	added, err := a.Store().AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	require.True(t, added.Dir)

	out := filepath.Join(t.TempDir(), "got")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var last node.FetchProgress
	res, err := b.Fetch(ctx, added.Root, node.FetchOptions{Output: out, Progress: func(p node.FetchProgress) { last = p }})
	require.NoError(t, err)
	require.Equal(t, out, res.Path)
	requireSameTree(t, src, out)
	require.Equal(t, added.Files, last.Files)
	require.Equal(t, added.Files, last.FilesDone, "progress counts the files written")

	f, ok := b.Store().File(added.Root)
	require.True(t, ok)
	require.Equal(t, store.Complete, f.State)
	require.True(t, f.Dir)
	require.Equal(t, added.Files, f.Files)
	require.Equal(t, added.Size, f.Size)
	require.True(t, b.Store().ServeHas(added.Root), "the fetched folder is served")
	require.Equal(t, out, f.Path, "held in place, where it was written")
	_, err = os.Lstat(store.PartPath(out, added.Root))
	require.ErrorIs(t, err, os.ErrNotExist, "no partial tree is left")

	// A third node, bootstrapped off b, fetches it from the network (b serves what it fetched).
	c := repoNode(t, b)
	third := filepath.Join(t.TempDir(), "third")
	_, err = c.Fetch(ctx, added.Root, node.FetchOptions{Output: third})
	require.NoError(t, err)
	requireSameTree(t, src, third)

	// A second fetch to the same place finds it there; to another place it copies what is here.
	res, err = b.Fetch(ctx, added.Root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	require.Zero(t, res.Stats.Blocks)
	require.Equal(t, out, res.Path)
	again := filepath.Join(t.TempDir(), "again")
	res, err = b.Fetch(ctx, added.Root, node.FetchOptions{Output: again})
	require.NoError(t, err)
	require.Zero(t, res.Stats.Blocks, "every block was already here")
	requireSameTree(t, src, again)
}

// A path into a folder fetches only what it names: a subtree as a folder, one file as a file,
// each under its own name, with only the blocks on the path and below the entry asked for.
func TestFetchOfAPathFetchesOnlyThatSubtreeOrFile(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	src := writeTestTree(t)
	added, err := a.Store().AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	dir := t.TempDir()
	res, err := b.Fetch(ctx, added.Root, node.FetchOptions{Dir: dir, Path: []string{"a", "b"}})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "b"), res.Path, "named after the path's last name")
	requireSameTree(t, filepath.Join(src, "a", "b"), res.Path)
	require.True(t, res.File.Dir)

	res, err = b.Fetch(ctx, added.Root, node.FetchOptions{Dir: dir, Path: []string{"Ελληνικά", "пример.md"}})
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "пример.md"))
	require.NoError(t, err)
	require.Equal(t, "κείμενο", string(got))
	require.False(t, res.File.Dir)

	// Nothing else of the folder came: not the big file's blocks, not the other folders.
	bigRoot, err := a.Store().Resolve(t.Context(), added.Root, []string{"big.bin"})
	require.NoError(t, err)
	require.False(t, b.Store().HasBlock(t.Context(), bigRoot), "a file off the path is not fetched")
	aRoot, err := a.Store().Resolve(t.Context(), added.Root, []string{"a"})
	require.NoError(t, err)
	require.True(t, b.Store().HasBlock(t.Context(), aRoot), "the folders on the path are")
	two, err := a.Store().Resolve(t.Context(), added.Root, []string{"a", "two.txt"})
	require.NoError(t, err)
	require.False(t, b.Store().HasBlock(t.Context(), two), "a sibling on the path is not")

	_, err = b.Fetch(ctx, added.Root, node.FetchOptions{Dir: dir, Path: []string{"a", "nothing"}})
	require.ErrorContains(t, err, `"nothing": no such entry`)
}

// BenchmarkFetchFolderOfSmallFiles fetches 10,000 files of 4 KiB in 100 folders from one node to
// another on loopback, into a fresh repo and a new output each round, and reports files/s.
//
//	go test -run '^$' -bench FetchFolderOfSmallFiles -benchtime 3x ./node
func BenchmarkFetchFolderOfSmallFiles(b *testing.B) {
	const folders, perFolder, size = 100, 100, 4 << 10
	src := filepath.Join(b.TempDir(), "tree")
	buf := make([]byte, size)
	for d := range folders {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		require.NoError(b, os.MkdirAll(dir, 0o755))
		for f := range perFolder {
			binary.LittleEndian.PutUint64(buf, uint64(d*perFolder+f))
			require.NoError(b, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), buf, 0o644))
		}
	}
	a := repoNode(b, nil)
	added, err := a.Store().AddTree(b.Context(), src, store.AddOptions{})
	require.NoError(b, err)
	b.SetBytes(folders * perFolder * size)
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		c := repoNode(b, a)
		out := filepath.Join(b.TempDir(), "got")
		b.StartTimer()
		start := time.Now()
		_, err := c.Fetch(b.Context(), added.Root, node.FetchOptions{Output: out})
		elapsed += time.Since(start)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N*folders*perFolder)/elapsed.Seconds(), "files/s")
}

// A partial tree beside the output that the log does not name is refused and left alone, as a
// partial file is (it may be someone else's); a link planted in its place is refused, nothing
// written through it.
func TestAnUnknownPartialTreeAndAPlantedLinkAreRefused(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	src := writeTestTree(t)
	added, err := a.Store().AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	out := filepath.Join(t.TempDir(), "got")
	part := store.PartPath(out, added.Root)
	require.NoError(t, os.MkdirAll(filepath.Join(part, "a"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(part, "a", "two.txt"), []byte("mine"), 0o644))
	_, err = b.Fetch(ctx, added.Root, node.FetchOptions{Output: out})
	require.ErrorIs(t, err, store.ErrUnknownPart)
	got, err := os.ReadFile(filepath.Join(part, "a", "two.txt"))
	require.NoError(t, err)
	require.Equal(t, "mine", string(got), "left alone")
	_, err = os.Lstat(out)
	require.ErrorIs(t, err, os.ErrNotExist)

	elsewhere := t.TempDir()
	out2 := filepath.Join(t.TempDir(), "got")
	require.NoError(t, os.Symlink(elsewhere, store.PartPath(out2, added.Root)))
	_, err = b.Fetch(ctx, added.Root, node.FetchOptions{Output: out2})
	require.ErrorIs(t, err, store.ErrUnknownPart)
	left, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	require.Empty(t, left, "nothing written through the link")
	_, err = os.Lstat(out2)
	require.ErrorIs(t, err, os.ErrNotExist)
}
