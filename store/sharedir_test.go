package store_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/unixfs"
)

func sharedTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "album")
	writeTree(t, src, map[string]string{
		"a.txt":          "alpha",
		"sub/b.txt":      "bravo!",
		"sub/deep/c.bin": string(randomBytes(2, 3<<20)),
		"Ünï/ç.txt":      "unicode",
		"empty.txt":      "",
	})
	require.NoError(t, os.MkdirAll(filepath.Join(src, "empty"), 0o755))
	require.NoError(t, os.Symlink("a.txt", filepath.Join(src, "link")))
	return src
}

// blockFiles counts the blocks the repo owns.
func blockFiles(t *testing.T, dir string) int {
	t.Helper()
	n, err := store.StoredBlocks(dir)
	require.NoError(t, err)
	return n
}

// TestAddTreeReferenceKeepsFilesInPlace shares a folder in place: the root is the one a copy
// gives, one FileAdded event records it with its path, only directory nodes, the symlink and
// inner nodes are owned, and every leaf is served from the user's files.
func TestAddTreeReferenceKeepsFilesInPlace(t *testing.T) {
	src := sharedTree(t)
	copied := open(t, newRepo(t))
	want, err := copied.AddTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)

	dir := newRepo(t)
	s := open(t, dir)
	var before int
	require.NoError(t, s.Events(0, func(store.Event) error { before++; return nil }))
	f, err := s.AddTree(t.Context(), src, store.AddOptions{Reference: true})
	require.NoError(t, err)
	require.Equal(t, want.Root, f.Root, "the same root as a copy")
	require.True(t, f.Dir)
	require.Equal(t, uint64(5), f.Files)
	require.Equal(t, src, f.Path)
	var evs []store.Event
	require.NoError(t, s.Events(0, func(e store.Event) error { evs = append(evs, e); return nil }))
	require.Len(t, evs, before+1, "one event for the whole folder")

	// Owned: 5 directories (album, sub, deep, Ünï, empty), the symlink, c.bin's root. Leaves stay
	// in the files.
	require.Equal(t, 7, blockFiles(t, dir))
	require.Equal(t, want.Size, f.Size)

	require.NoError(t, s.Record(store.Event{Type: store.Shared, Root: f.CID}))
	require.True(t, s.Intact(f))
	for _, names := range [][]string{{"a.txt"}, {"Ünï", "ç.txt"}, {"empty.txt"}} {
		c := mustResolve(t, s, f, names...)
		data, err := s.ServeBlock(t.Context(), c, nil)
		require.NoError(t, err, names)
		want, err := os.ReadFile(filepath.Join(append([]string{src}, names...)...))
		require.NoError(t, err)
		require.Equal(t, want, data)
	}
	c := mustResolve(t, s, f, "sub", "deep", "c.bin")
	data, err := s.GetBlock(t.Context(), c)
	require.NoError(t, err)
	n, err := unixfs.ParseNode(c, data)
	require.NoError(t, err)
	big := randomBytes(2, 3<<20)
	for _, ch := range n.Children {
		leaf, err := s.ServeBlock(t.Context(), ch.Cid, nil)
		require.NoError(t, err)
		require.Equal(t, big[ch.Offset:ch.Offset+ch.Size], leaf)
	}
	require.Equal(t, 0, s.CheckFiles())
	_, err = s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 7, blockFiles(t, dir), "gc keeps the folder's owned nodes")

	// Reopened, the folder is still intact and served.
	require.NoError(t, s.Close())
	s = open(t, dir)
	f, ok := s.File(f.Root)
	require.True(t, ok)
	require.True(t, f.Dir)
	require.Equal(t, src, f.Path)
	_, err = s.ServeBlock(t.Context(), mustResolve(t, s, f, "a.txt"), nil)
	require.NoError(t, err)
	files, same, err := s.Replayed()
	require.NoError(t, err)
	require.True(t, same, "%v", files)
}

// TestAddTreeReferenceFile shares a single file through AddTree: it is added by reference as
// Add adds it.
func TestAddTreeReferenceFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "one.txt")
	require.NoError(t, os.WriteFile(src, []byte("just one"), 0o644))
	s := open(t, newRepo(t))
	f, err := s.AddTree(t.Context(), src, store.AddOptions{Reference: true})
	require.NoError(t, err)
	require.False(t, f.Dir)
	require.Equal(t, src, f.Path)
	require.Equal(t, "one.txt", f.Name)
}

// changeAfter waits until a file written now has a change time past the folder's hashing time
// (file times come from a coarse clock), so that a rewrite of the same size is seen as one.
func changeAfter(t *testing.T, f store.File, dir string) {
	t.Helper()
	probe := filepath.Join(dir, ".probe")
	require.Eventually(t, func() bool {
		require.NoError(t, os.WriteFile(probe, nil, 0o644))
		st, err := os.Stat(probe)
		require.NoError(t, err)
		return st.ModTime().UnixNano() > f.ModTime
	}, 10*time.Second, time.Millisecond)
}

// TestSharedFolderChange edits, deletes or rewrites (same size) one file of a shared folder: the
// periodic check records the folder as changed, and its leaves are no longer served.
func TestSharedFolderChange(t *testing.T) {
	for name, change := range map[string]func(t *testing.T, p string){
		"appended": func(t *testing.T, p string) {
			fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = fh.WriteString("more")
			require.NoError(t, err)
			require.NoError(t, fh.Close())
		},
		"deleted": func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) },
		"rewritten": func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, []byte("BRAVO!"), 0o644))
		},
	} {
		t.Run(name, func(t *testing.T) {
			src := sharedTree(t)
			s := open(t, newRepo(t))
			f, err := s.AddTree(t.Context(), src, store.AddOptions{Reference: true})
			require.NoError(t, err)
			require.NoError(t, s.Record(store.Event{Type: store.Shared, Root: f.CID}))
			leaf := mustResolve(t, s, f, "a.txt")
			_, err = s.ServeBlock(t.Context(), leaf, nil)
			require.NoError(t, err)
			changeAfter(t, f, t.TempDir())
			change(t, filepath.Join(src, "sub", "b.txt"))

			require.Equal(t, 1, s.CheckFiles())
			got, ok := s.File(f.Root)
			require.True(t, ok)
			require.Equal(t, store.Changed, got.State)
			require.Contains(t, got.Error, filepath.Join(src, "sub", "b.txt"))
			_, err = s.ServeBlock(t.Context(), leaf, nil)
			require.ErrorIs(t, err, store.ErrNotFound, "a changed folder is not served")
		})
	}
}

// TestSharedFolderServingChecksStat rewrites a file of a shared folder with the same size:
// serving it sees the new change time, and records the folder as changed.
func TestSharedFolderServingChecksStat(t *testing.T) {
	src := sharedTree(t)
	s := open(t, newRepo(t))
	f, err := s.AddTree(t.Context(), src, store.AddOptions{Reference: true})
	require.NoError(t, err)
	require.NoError(t, s.Record(store.Event{Type: store.Shared, Root: f.CID}))
	leaf := mustResolve(t, s, f, "a.txt")
	_, err = s.ServeBlock(t.Context(), leaf, nil) // builds the refs while intact
	require.NoError(t, err)
	changeAfter(t, f, t.TempDir())
	require.NoError(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("ALPHA"), 0o644))
	_, err = s.ServeBlock(t.Context(), leaf, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, _ := s.File(f.Root)
	require.Equal(t, store.Changed, got.State)
}
