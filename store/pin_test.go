package store_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
)

func TestPinnedFileIsNotRemovedAndKeepsItsBlocks(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	data := randomBytes(31, 5000)
	f, err := s.Add(t.Context(), bytes.NewReader(data), "keep", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)

	p, err := s.Pin(f.Root)
	require.NoError(t, err)
	require.True(t, p.Pinned)
	events := func() int {
		n := 0
		require.NoError(t, s.Events(0, func(store.Event) error { n++; return nil }))
		return n
	}
	before := events()
	_, err = s.Pin(f.Root)
	require.NoError(t, err)
	require.Equal(t, before, events(), "pinning a pinned file records nothing")

	err = s.Remove(f.Root)
	require.ErrorIs(t, err, store.ErrPinned)
	require.ErrorContains(t, err, "peer unpin")
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed)
	require.Equal(t, data, catAll(t, s, f.Root))

	// The pin is in the log: a reopened repo and a replay agree.
	require.NoError(t, s.Close())
	s = open(t, dir)
	got, ok := s.File(f.Root)
	require.True(t, ok)
	require.True(t, got.Pinned)
	_, same, err := s.Replayed()
	require.NoError(t, err)
	require.True(t, same)

	u, err := s.Unpin(f.Root)
	require.NoError(t, err)
	require.False(t, u.Pinned)
	require.NoError(t, s.Remove(f.Root))
	res, err = s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 6, res.Removed)

	_, err = s.Pin(f.Root)
	require.ErrorIs(t, err, store.ErrUnknownFile)
}
