package store_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/unixfs"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
}

// TestAddTreeRecordsOneFolderAndSurvivesGC adds a folder: one FileAdded event says it is a
// folder with its file count and size, the index keeps that across a reopen, its files are
// read back by path, and gc keeps every block under it.
func TestAddTreeRecordsOneFolderAndSurvivesGC(t *testing.T) {
	dir := newRepo(t)
	src := filepath.Join(t.TempDir(), "album")
	writeTree(t, src, map[string]string{
		"a.txt":          "alpha",
		"sub/b.txt":      "bravo!",
		"sub/deep/c.bin": string(randomBytes(1, 3<<20)),
		".hidden":        "skipped",
	})
	require.NoError(t, os.MkdirAll(filepath.Join(src, "empty"), 0o755))
	require.NoError(t, os.Symlink("a.txt", filepath.Join(src, "link")))

	s := open(t, dir)
	var before int
	require.NoError(t, s.Events(0, func(store.Event) error { before++; return nil }))
	f, err := s.AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	want, err := store.HashTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)
	require.Equal(t, want.Root, f.Root)
	require.True(t, f.Dir)
	require.Equal(t, uint64(3), f.Files)
	require.Equal(t, uint64(5+6+3<<20), f.Size)
	require.Equal(t, "album", f.Name)
	var evs []store.Event
	require.NoError(t, s.Events(0, func(e store.Event) error { evs = append(evs, e); return nil }))
	require.Len(t, evs, before+1, "one event for the whole folder")
	require.True(t, evs[len(evs)-1].Dir)

	_, err = s.GC(t.Context())
	require.NoError(t, err)
	c, err := s.Resolve(t.Context(), f.Root, []string{"sub", "deep", "c.bin"})
	require.NoError(t, err)
	r, err := s.Cat(t.Context(), c)
	require.NoError(t, err)
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Equal(t, randomBytes(1, 3<<20), data, "gc kept the folder's blocks")

	entries, err := s.ListDir(t.Context(), f.Root)
	require.NoError(t, err)
	require.Equal(t, []store.Entry{
		{Name: "a.txt", CID: entries[0].CID, Kind: "file", Size: 5},
		{Name: "empty", CID: entries[1].CID, Kind: "dir"},
		{Name: "link", CID: entries[2].CID, Kind: "symlink", Size: 5},
		{Name: "sub", CID: entries[3].CID, Kind: "dir"},
	}, entries)
	_, err = s.ListDir(t.Context(), mustResolve(t, s, f, "a.txt"))
	require.ErrorIs(t, err, unixfs.ErrNotDir)

	require.NoError(t, s.Close())
	s2 := open(t, dir)
	f2, ok := s2.File(f.Root)
	require.True(t, ok)
	require.True(t, f2.Dir)
	require.Equal(t, uint64(3), f2.Files)
	files, same, err := s2.Replayed()
	require.NoError(t, err)
	require.True(t, same, "the snapshot and a replay agree: %v", files)
}

func mustResolve(t *testing.T, s *store.Store, f store.File, names ...string) cid.Cid {
	t.Helper()
	c, err := s.Resolve(t.Context(), f.Root, names)
	require.NoError(t, err)
	return c
}
