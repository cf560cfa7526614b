package store_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/unixfs"
)

// shareInPlace writes data to a file and adds it by reference, as `peer share` does.
func shareInPlace(t *testing.T, s *store.Store, data []byte) (store.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shared.bin")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	f, err := s.Add(t.Context(), in, "shared.bin", store.AddOptions{ChunkSize: 1024, Reference: true, Path: path})
	require.NoError(t, err)
	return f, path
}

// leaves lists a file's leaf CIDs, read from its (owned) root.
func leaves(t *testing.T, s *store.Store, root cid.Cid) []cid.Cid {
	t.Helper()
	b, err := s.GetBlock(t.Context(), root)
	require.NoError(t, err)
	n, err := unixfs.ParseNode(root, b)
	require.NoError(t, err)
	var out []cid.Cid
	for _, ch := range n.Children {
		out = append(out, ch.Cid)
	}
	return out
}

// The map of referenced leaves is built on first use; lookups racing with that first build must
// all find their leaf, not an empty map that is still being filled.
func TestReferencedLeavesFoundByConcurrentFirstLookups(t *testing.T) {
	for trial := range 3 {
		dir := newRepo(t)
		s, err := store.Open(dir)
		require.NoError(t, err)
		var f store.File
		for i := range 30 { // many files make the first build long enough for lookups to race it
			f, _ = shareInPlace(t, s, randomBytes(uint64(100*trial+i), 64*1024))
		}
		require.NoError(t, s.Close())

		s = open(t, dir) // a fresh store: no map yet
		kids := leaves(t, s, f.Root)
		require.Len(t, kids, 64)
		start := make(chan struct{})
		errs := make(chan error, len(kids))
		var wg sync.WaitGroup
		for _, c := range kids {
			wg.Go(func() {
				<-start
				_, err := s.GetBlock(t.Context(), c)
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "trial %d", trial)
		}
	}
}

// A snapshot must keep what identifies a referenced file's version (its modification time):
// without it, every file shared in place looks changed after a reopen that loads the snapshot.
func TestReferencedFileSurvivesASnapshot(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	data := randomBytes(7, 10_000)
	f, _ := shareInPlace(t, s, data)
	for range 40 { // enough events for Close to write a snapshot
		require.NoError(t, s.Record(store.Event{Type: store.Pinned, Root: f.CID}, store.Event{Type: store.Unpinned, Root: f.CID}))
	}
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, "snapshot.json"))
	require.NoError(t, err)

	s = open(t, dir)
	require.Equal(t, data, catAll(t, s, f.Root))
	got, ok := s.File(f.Root)
	require.True(t, ok)
	require.Equal(t, store.Complete, got.State)
	_, err = s.ServeBlock(t.Context(), leaves(t, s, f.Root)[0], nil)
	require.NoError(t, err)
}

// A snapshot that parses but does not line up with the log is replaced at the next Close, rather
// than ignored (and the whole log replayed) at every open from then on.
func TestMisalignedSnapshotIsReplacedAtClose(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	f, _ := shareInPlace(t, s, randomBytes(3, 2000))
	for range 40 {
		require.NoError(t, s.Record(store.Event{Type: store.Pinned, Root: f.CID}, store.Event{Type: store.Unpinned, Root: f.CID}))
	}
	want := s.Files()
	require.NoError(t, s.Close())

	snap := filepath.Join(dir, "snapshot.json")
	require.NoError(t, os.WriteFile(snap, []byte(`{"version":2,"offset":8,"index":{"seq":5,"files":{},"catalog":{}}}`), 0o600))
	s, err = store.Open(dir)
	require.NoError(t, err)
	require.Equal(t, want, s.Files())
	require.NoError(t, s.Close())

	var sn struct {
		Index struct {
			Seq uint64 `json:"seq"`
		} `json:"index"`
	}
	b, err := os.ReadFile(snap)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sn))
	require.Equal(t, uint64(81), sn.Index.Seq) // FileAdded and 80 pin events
}
