package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// eventsOf lists the recorded events of one type.
func eventsOf(t *testing.T, s *store.Store, ty store.EventType) []store.Event {
	t.Helper()
	var out []store.Event
	require.NoError(t, s.Events(0, func(e store.Event) error {
		if e.Type == ty {
			out = append(out, e)
		}
		return nil
	}))
	return out
}

// A file shared in place and edited with its size and modification time put back is not served:
// the next serve hashes what it reads, records the file as changed and answers not found.
func TestServeDetectsAnInPlaceEditThatKeepsSizeAndMtime(t *testing.T) {
	s := open(t, newRepo(t))
	data := randomBytes(41, 8*1024)
	f, path := shareInPlace(t, s, data)
	kids := leaves(t, s, f.Root)
	got, err := s.ServeBlock(t.Context(), kids[3], nil)
	require.NoError(t, err)
	require.Equal(t, data[3*1024:4*1024], got)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	edited := bytes.Clone(data)
	edited[3*1024+10] ^= 0x01
	require.NoError(t, os.WriteFile(path, edited, 0o644))
	require.NoError(t, os.Chtimes(path, time.Time{}, fi.ModTime()))
	require.True(t, s.Intact(f), "size and mtime are those that were hashed")

	_, err = s.ServeBlock(t.Context(), kids[3], nil)
	require.ErrorIs(t, err, store.ErrNotFound)
	changed := eventsOf(t, s, store.FileChanged)
	require.Len(t, changed, 1)
	require.Equal(t, f.CID, changed[0].Root)
	cur, ok := s.File(f.Root)
	require.True(t, ok)
	require.Equal(t, store.Changed, cur.State)
	// Nothing of the file is served any more, not even its unchanged leaves.
	_, err = s.ServeBlock(t.Context(), kids[0], nil)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// An owned block whose file rotted (one byte flipped) is not served: it is moved aside, recorded
// once as BlockCorrupt, and answered not found from then on.
func TestServeRefusesARottedOwnedBlock(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	data := randomBytes(42, 10_000)
	f, err := s.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	kids := leaves(t, s, f.Root)
	var victim string
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "blocks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == kids[2].String() {
			victim = p
		}
		return err
	}))
	require.NotEmpty(t, victim)
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x40
	require.NoError(t, os.WriteFile(victim, b, 0o600))

	_, err = s.ServeBlock(t.Context(), kids[2], nil)
	require.ErrorIs(t, err, store.ErrCorruptBlock)
	for range 2 {
		_, err = s.ServeBlock(t.Context(), kids[2], nil)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	corrupt := eventsOf(t, s, store.BlockCorrupt)
	require.Len(t, corrupt, 1)
	require.Equal(t, kids[2].String(), corrupt[0].Root)
	require.True(t, strings.HasSuffix(corrupt[0].Path, ".corrupt"))
	_, err = os.Stat(corrupt[0].Path)
	require.NoError(t, err, "the bad bytes are kept aside")
	// The other blocks are still served.
	got, err := s.ServeBlock(t.Context(), kids[1], nil)
	require.NoError(t, err)
	require.Equal(t, data[1024:2048], got)
}
