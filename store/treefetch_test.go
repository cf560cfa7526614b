package store_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store"
)

// fetchTreeFrom plays the transfer for a folder download: blocks in the order a fetch takes them
// (each expanded before it is delivered), what Has denies taken from src, at most limit of them
// (-1: no limit). It returns how many it delivered, and how many of those were not raw leaves.
func fetchTreeFrom(t *testing.T, src *store.Store, d *store.Download, limit int) (delivered, inner int) {
	t.Helper()
	ctx := context.Background()
	queue := []cid.Cid{d.Root()}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if ok, err := d.Has(ctx, c); err != nil {
			t.Fatal(err)
		} else if ok {
			if c.Type() != cid.Raw {
				b, err := d.Get(ctx, c)
				require.NoError(t, err)
				kids, err := d.Expand(c, b)
				require.NoError(t, err)
				queue = append(queue, kids...)
			}
			continue
		}
		if delivered == limit {
			return delivered, inner
		}
		b, err := src.GetBlock(ctx, c)
		require.NoError(t, err)
		kids, err := d.Expand(c, b)
		require.NoError(t, err)
		require.NoError(t, d.Deliver(c, b))
		delivered++
		if c.Type() != cid.Raw {
			inner++
		}
		queue = append(queue, kids...)
	}
	return delivered, inner
}

// sameTree compares two trees with Lstat, as diff -r does: names, kinds, bytes, link targets.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	list := func(root string) map[string]string {
		out := map[string]string{}
		require.NoError(t, filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			require.NoError(t, err)
			rel, _ := filepath.Rel(root, p)
			st, err := os.Lstat(p)
			require.NoError(t, err)
			switch {
			case st.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				require.NoError(t, err)
				out[rel] = "link:" + target
			case st.IsDir():
				out[rel] = "dir"
			default:
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				out[rel] = "file:" + string(b)
			}
			return nil
		}))
		return out
	}
	require.Equal(t, list(want), list(got))
}

func countEvents(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	require.NoError(t, s.Events(0, func(store.Event) error { n++; return nil }))
	return n
}

// A folder download writes every leaf once, into its file in the partial tree, keeps only the
// folder nodes, the link and the inner nodes in the repo, and records the folder as held in place
// with two events; its files are served from there, and a file changed afterwards is found and
// the folder withdrawn.
func TestTreeDownloadWritesEachFileOnceInPlace(t *testing.T) {
	srcDir := sharedTree(t)
	writeTree(t, srcDir, map[string]string{"twin/a.txt": "alpha"}) // the same leaf at two places
	src := open(t, newRepo(t))
	added, err := src.AddTree(t.Context(), srcDir, store.AddOptions{ChunkSize: 64 << 10})
	require.NoError(t, err)

	dir := newRepo(t)
	dst := open(t, dir)
	before := countEvents(t, dst)
	out := filepath.Join(t.TempDir(), "got")
	d, err := dst.StartTreeDownload(added.Root, "album", out)
	require.NoError(t, err)
	_, inner := fetchTreeFrom(t, src, d, -1)
	files, done, ok := d.TreeFiles()
	require.True(t, ok)
	require.Equal(t, added.Files, files)
	require.NoError(t, d.Complete())
	require.Equal(t, added.Files, done)
	sameTree(t, srcDir, out)
	require.Equal(t, inner, blockFiles(t, dir), "the repo owns the inner nodes, no leaf")
	require.Equal(t, before+2, countEvents(t, dst), "FetchStarted and FetchCompleted, nothing per file")
	_, err = os.Lstat(store.PartPath(out, added.Root))
	require.ErrorIs(t, err, fs.ErrNotExist)

	f, ok := dst.File(added.Root)
	require.True(t, ok)
	require.Equal(t, store.Complete, f.State)
	require.True(t, f.Dir)
	require.Equal(t, out, f.Path)
	require.Equal(t, added.Files, f.Files)
	require.Equal(t, added.Size, f.Size)
	require.Zero(t, dst.CheckFiles())

	leaf := mustResolve(t, dst, f, "sub", "b.txt")
	got, err := dst.ServeBlock(t.Context(), leaf, nil)
	require.NoError(t, err)
	require.Equal(t, "bravo!", string(got), "served from the file in place")

	changeAfter(t, f, t.TempDir())
	require.NoError(t, os.WriteFile(filepath.Join(out, "sub", "b.txt"), []byte("BRAVO!"), 0o644))
	require.Equal(t, 1, dst.CheckFiles())
	f, _ = dst.File(added.Root)
	require.Equal(t, store.Changed, f.State)
	_, err = dst.ServeBlock(t.Context(), leaf, nil)
	require.ErrorIs(t, err, store.ErrNotFound, "a changed folder is not served")
}

// A folder download that stopped (the process killed: the store closed with the download never
// ended) resumes from the partial tree: the leaves already in place are read back and verified,
// not fetched again; a file torn since is fetched again; the tree comes out whole.
func TestTreeDownloadResumesFromWhatIsInPlace(t *testing.T) {
	srcDir := filepath.Join(t.TempDir(), "tree")
	want := map[string]string{}
	for i := range 40 {
		want[filepath.Join("d"+string(rune('a'+i%4)), "f"+string(rune('a'+i/4)))] = string(randomBytes(uint64(i), 100+i))
	}
	writeTree(t, srcDir, want)
	src := open(t, newRepo(t))
	added, err := src.AddTree(t.Context(), srcDir, store.AddOptions{})
	require.NoError(t, err)

	dir := newRepo(t)
	dst, err := store.Open(dir)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "got")
	d := mustStart(t, dst, added.Root, out)
	first, _ := fetchTreeFrom(t, src, d, 25)
	require.Equal(t, 25, first)
	// Killed: nothing ends the download, the store goes away.
	require.NoError(t, dst.Close())
	waitWritten(t, store.PartPath(out, added.Root), 20)
	torn := filepath.Join(store.PartPath(out, added.Root), "da", "fa")
	require.NoError(t, os.Truncate(torn, 10))

	dst = open(t, dir)
	d = mustStart(t, dst, added.Root, out)
	second, _ := fetchTreeFrom(t, src, d, -1)
	require.NoError(t, d.Complete())
	const blocks = 1 + 4 + 40 // the root, its folders, a leaf per file
	require.Equal(t, blocks-first+1, second, "only what was not in place, and the torn file")
	sameTree(t, srcDir, out)
	f, _ := dst.File(added.Root)
	require.Equal(t, store.Complete, f.State)
	require.Equal(t, out, f.Path)
}

func mustStart(t *testing.T, s *store.Store, root cid.Cid, out string) *store.Download {
	t.Helper()
	d, err := s.StartTreeDownload(root, "tree", out)
	require.NoError(t, err)
	return d
}

// waitWritten waits until the partial tree holds n files with bytes (the writers finish what
// they were given).
func waitWritten(t *testing.T, part string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		got := 0
		_ = filepath.WalkDir(part, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				if st, err := e.Info(); err == nil && st.Size() > 0 {
					got++
				}
			}
			return nil
		})
		return got >= n
	}, 10*time.Second, time.Millisecond)
}

// A folder download killed after it moved its tree into place but before it recorded that
// resumes in place: nothing is fetched, every file is checked where it lies, and the folder is
// recorded as held there.
func TestTreeDownloadKilledAfterTheRenameCompletesInPlace(t *testing.T) {
	srcDir := sharedTree(t)
	src := open(t, newRepo(t))
	added, err := src.AddTree(t.Context(), srcDir, store.AddOptions{})
	require.NoError(t, err)
	dir := newRepo(t)
	dst, err := store.Open(dir)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "got")
	d := mustStart(t, dst, added.Root, out)
	fetchTreeFrom(t, src, d, -1)
	part := store.PartPath(out, added.Root)
	waitWritten(t, part, 4) // the files with bytes
	require.NoError(t, os.Symlink("a.txt", filepath.Join(part, "link")))
	require.NoError(t, os.Rename(part, out))
	require.NoError(t, dst.Close()) // killed before FetchCompleted

	dst = open(t, dir)
	f, ok := dst.File(added.Root)
	require.True(t, ok)
	require.True(t, store.TreeMovedInPlace(f, out))
	d = mustStart(t, dst, added.Root, out)
	delivered, _ := fetchTreeFrom(t, src, d, -1)
	require.Zero(t, delivered, "everything was in place")
	require.NoError(t, d.Complete())
	sameTree(t, srcDir, out)
	f, _ = dst.File(added.Root)
	require.Equal(t, store.Complete, f.State)
	require.Equal(t, out, f.Path)
	require.Zero(t, dst.CheckFiles())
}
