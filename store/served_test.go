package store_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store"
)

// A removed file is no longer served, block by block, from the moment it is removed, although its
// blocks stay on disk until gc; a block another held file needs is still served.
func TestRemovedFileIsNoLongerServedButStaysUntilGC(t *testing.T) {
	s := open(t, newRepo(t))
	common, onlyX, onlyY := randomBytes(1, 1024), randomBytes(2, 1024), randomBytes(3, 1024)
	add := func(name string, parts ...[]byte) store.File {
		f, err := s.Add(t.Context(), bytes.NewReader(bytes.Join(parts, nil)), name, store.AddOptions{ChunkSize: 1024})
		require.NoError(t, err)
		return f
	}
	x := add("x", common, onlyX)
	y := add("y", common, onlyY)
	serve := func(c cid.Cid) error {
		_, err := s.ServeBlock(t.Context(), c, nil)
		return err
	}
	for _, c := range []cid.Cid{x.Root, y.Root, rawCID(t, common), rawCID(t, onlyX), rawCID(t, onlyY)} {
		require.NoError(t, serve(c), "held: served")
	}

	require.NoError(t, s.Remove(x.Root))
	require.ErrorIs(t, serve(x.Root), store.ErrNotFound, "removed: its root is not served")
	require.ErrorIs(t, serve(rawCID(t, onlyX)), store.ErrNotFound, "removed: a leaf only it needs is not served")
	require.NoError(t, serve(rawCID(t, common)), "a leaf y still needs is served")
	require.NoError(t, serve(y.Root))
	require.True(t, s.HasBlock(t.Context(), x.Root), "the blocks are still on disk before gc")
	_, err := s.GetBlock(t.Context(), rawCID(t, onlyX))
	require.NoError(t, err)

	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, res.Removed, "gc reclaims x's root and the leaf only x needed")
	require.Equal(t, bytes.Join([][]byte{common, onlyY}, nil), catAll(t, s, y.Root))
}

// A referenced file that changed is not served at all, not even its owned root.
func TestChangedFileServesNoBlock(t *testing.T) {
	s := open(t, newRepo(t))
	f, path := shareInPlace(t, s, randomBytes(4, 3000))
	_, err := s.ServeBlock(t.Context(), f.Root, nil)
	require.NoError(t, err)
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, later, later)) // touched: no longer the version hashed
	require.Equal(t, 1, s.CheckFiles())
	_, err = s.ServeBlock(t.Context(), f.Root, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, _ := s.File(f.Root)
	require.Equal(t, store.Changed, got.State)
}

// A file added while the node serves is served at once, and by walking it alone: the set built
// before is kept, not rebuilt for every file added.
func TestAddedFileIsServedWithoutRebuilding(t *testing.T) {
	s := open(t, newRepo(t))
	serve := func(c cid.Cid) error {
		_, err := s.ServeBlock(t.Context(), c, nil)
		return err
	}
	first, err := s.Add(t.Context(), bytes.NewReader(randomBytes(5, 4096)), "first", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	require.NoError(t, serve(first.Root)) // builds the set
	for i := range 20 {
		data := randomBytes(uint64(10+i), 4096)
		f, err := s.Add(t.Context(), bytes.NewReader(data), "more", store.AddOptions{ChunkSize: 1024})
		require.NoError(t, err)
		require.NoError(t, serve(f.Root))
		require.NoError(t, serve(rawCID(t, data[1024:2048])))
	}
	require.EqualValues(t, 1, s.ServedBuilds(), "one full build, then only the added files were walked")
}

// ServeHas, ServeSize and Served answer as ServeBlock serves, owned or referenced, without
// reading a block, and stop with the file.
func TestServeSizeAndListFollowServeBlock(t *testing.T) {
	s := open(t, newRepo(t))
	owned, err := s.Add(t.Context(), bytes.NewReader(randomBytes(5, 2500)), "owned", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	inPlace := randomBytes(6, 3000)
	ref, _ := shareInPlace(t, s, inPlace)
	for _, c := range []cid.Cid{owned.Root, rawCID(t, randomBytes(5, 2500)[1024:2048]), ref.Root, rawCID(t, inPlace[:1024])} {
		data, err := s.ServeBlock(t.Context(), c, nil)
		require.NoError(t, err)
		n, err := s.ServeSize(c)
		require.NoError(t, err)
		require.Equal(t, len(data), n, "%s", c)
		require.True(t, s.ServeHas(c))
		require.Contains(t, s.Served(), c)
	}
	require.Len(t, s.Served(), 4+4, "each: a root and three leaves")

	require.NoError(t, s.Remove(owned.Root))
	_, err = s.ServeSize(owned.Root)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.False(t, s.ServeHas(owned.Root))
	require.ElementsMatch(t, append(leaves(t, s, ref.Root), ref.Root), s.Served())
}
