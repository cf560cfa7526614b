package store_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// packFiles lists the repo's pack files and their indexes.
func packFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "blocks", "packs", "*"+ext))
	require.NoError(t, err)
	return m
}

func catPath(t *testing.T, s *store.Store, f store.File, names ...string) string {
	t.Helper()
	r, err := s.Cat(t.Context(), mustResolve(t, s, f, names...))
	require.NoError(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

// A folder of small files is stored as one pack and its index, not a file per block; its blocks
// read back, also after a reopen that finds the index gone (it is rebuilt from the pack).
func TestAddTreePacksSmallBlocksAndRebuildsALostIndex(t *testing.T) {
	dir := newRepo(t)
	src := filepath.Join(t.TempDir(), "album")
	files := map[string]string{}
	for i := range 50 {
		files[filepath.Join("d"+string(rune('a'+i%5)), "f"+string(rune('a'+i/5))+".txt")] = strings.Repeat(string(rune('A'+i)), 100+i)
	}
	files["big.bin"] = string(randomBytes(3, 3<<20)) // 1 MiB blocks: files of their own
	writeTree(t, src, files)
	s := open(t, dir)
	f, err := s.AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	require.Len(t, packFiles(t, dir, ".pack"), 1, "one pack for the import")
	require.Len(t, packFiles(t, dir, ".idx"), 1)
	n, err := store.StoredBlocks(dir)
	require.NoError(t, err)
	require.Equal(t, 50+6+1+3, n, "50 files, 5 folders and the root, big.bin's root and 3 leaves")
	require.NoError(t, s.Close())

	require.NoError(t, os.Remove(packFiles(t, dir, ".idx")[0]))
	s = open(t, dir)
	for name, want := range files {
		require.Equal(t, want, catPath(t, s, f, strings.Split(name, string(filepath.Separator))...), name)
	}
	require.Len(t, packFiles(t, dir, ".idx"), 1, "the index is written again")
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed)
	require.NoError(t, s.Close())

	// An index that no longer matches its pack (here: torn) is not trusted.
	idx := packFiles(t, dir, ".idx")[0]
	b, err := os.ReadFile(idx)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(idx, b[:len(b)/2], 0o600))
	s = open(t, dir)
	require.Equal(t, files["da/fa.txt"], catPath(t, s, f, "da", "fa.txt"))
}

// What a crash in the middle of writing a pack leaves (a record cut short, bytes that are not a
// record) is ignored when the pack is read: the whole records before it are found, and gc takes
// them when no file names them.
func TestATornPackKeepsItsWholeRecords(t *testing.T) {
	dir := newRepo(t)
	src := filepath.Join(t.TempDir(), "album")
	writeTree(t, src, map[string]string{"a.txt": "alpha", "b.txt": "bravo"})
	s := open(t, dir)
	f, err := s.AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	pack := packFiles(t, dir, ".pack")[0]
	require.NoError(t, os.Remove(packFiles(t, dir, ".idx")[0]))
	fh, err := os.OpenFile(pack, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = fh.Write([]byte{36, 1, 0x55, 0x12, 0x20, 9, 9}) // a record's start, cut short
	require.NoError(t, err)
	require.NoError(t, fh.Close())

	s = open(t, dir)
	require.Equal(t, "bravo", catPath(t, s, f, "b.txt"))
	n, err := store.StoredBlocks(dir)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.NoError(t, s.Remove(f.Root))
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, res.Removed)
	require.Empty(t, packFiles(t, dir, ".pack"), "a pack that holds nothing named is deleted")
	require.Empty(t, packFiles(t, dir, ".idx"))
}

// gc rewrites a pack that holds blocks no file names any more alongside blocks another file
// needs: those move to a new pack, the rest go, and what is kept reads back after a reopen.
func TestGCCompactsAPackWhoseBlocksAreHalfNeeded(t *testing.T) {
	dir := newRepo(t)
	one := filepath.Join(t.TempDir(), "one")
	two := filepath.Join(t.TempDir(), "two")
	writeTree(t, one, map[string]string{"x.txt": "only in one", "y.txt": "in both"})
	writeTree(t, two, map[string]string{"y.txt": "in both", "z.txt": "only in two"})
	s := open(t, dir)
	f1, err := s.AddTree(t.Context(), one, store.AddOptions{})
	require.NoError(t, err)
	f2, err := s.AddTree(t.Context(), two, store.AddOptions{})
	require.NoError(t, err)
	require.Len(t, packFiles(t, dir, ".pack"), 2)
	first := packFiles(t, dir, ".pack")
	require.NoError(t, s.Remove(f1.Root))
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, res.Removed, "one's folder and x.txt")
	require.Equal(t, 3, res.Kept, "two's folder, y.txt (from one's pack) and z.txt")
	packs := packFiles(t, dir, ".pack")
	require.Len(t, packs, 2, "one's pack rewritten, two's untouched")
	require.NotEqual(t, first, packs)
	require.NoError(t, s.Close())

	s = open(t, dir)
	require.Equal(t, "in both", catPath(t, s, f2, "y.txt"))
	require.Equal(t, "only in two", catPath(t, s, f2, "z.txt"))
	n, err := store.StoredBlocks(dir)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	res, err = s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed)
}

// A packed block that rots is moved aside like a block file (its bytes to KEY.corrupt), recorded
// once, and no longer found, after a reopen too.
func TestARottenPackedBlockIsMovedAside(t *testing.T) {
	dir := newRepo(t)
	src := filepath.Join(t.TempDir(), "album")
	writeTree(t, src, map[string]string{"a.txt": "alpha alpha alpha", "b.txt": "bravo"})
	s := open(t, dir)
	f, err := s.AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Record(store.Event{Type: store.Shared, Root: f.CID}))
	leaf := mustResolve(t, s, f, "a.txt")
	pack := packFiles(t, dir, ".pack")[0]
	b, err := os.ReadFile(pack)
	require.NoError(t, err)
	i := strings.Index(string(b), "alpha alpha alpha")
	require.Positive(t, i)
	fh, err := os.OpenFile(pack, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fh.WriteAt([]byte("A"), int64(i))
	require.NoError(t, err)
	require.NoError(t, fh.Close())

	_, err = s.ServeBlock(t.Context(), leaf, nil)
	require.ErrorIs(t, err, store.ErrCorruptBlock)
	require.False(t, s.HasBlock(t.Context(), leaf), "no longer found")
	var corrupt []store.Event
	require.NoError(t, s.Events(0, func(e store.Event) error {
		if e.Type == store.BlockCorrupt {
			corrupt = append(corrupt, e)
		}
		return nil
	}))
	require.Len(t, corrupt, 1)
	aside, err := os.ReadFile(corrupt[0].Path)
	require.NoError(t, err)
	require.Equal(t, "Alpha alpha alpha", string(aside))
	require.Equal(t, "bravo", catPath(t, s, f, "b.txt"), "the pack's other blocks stay")
	require.NoError(t, s.Close())
	s = open(t, dir)
	require.False(t, s.HasBlock(t.Context(), leaf), "nor after a reopen")
	require.Equal(t, "bravo", catPath(t, s, f, "b.txt"))
}
