package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store"
)

// The parts a Store exposes are the ones it works through: a block put through Blocks is what
// GetBlock reads, an event recorded through the Journal is what Files lists, and Refs judges the
// files the Journal holds.
func TestThePartsOfAStoreAreOneRepo(t *testing.T) {
	s := open(t, newRepo(t))
	data := []byte("a block put through the block repo")
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	require.NoError(t, err)
	c := cid.NewCidV1(cid.Raw, h)
	require.False(t, s.Blocks().Has(c))
	require.NoError(t, s.Blocks().Put(c, data))
	require.NoError(t, s.Blocks().Sync())
	require.True(t, s.HasBlock(t.Context(), c))
	got, err := s.GetBlock(t.Context(), c)
	require.NoError(t, err)
	require.Equal(t, data, got)

	require.NoError(t, s.Journal().Record(store.Event{Type: store.FileAdded, Root: c.String(), Name: "b", Size: uint64(len(data))}))
	f, ok := s.File(c)
	require.True(t, ok)
	require.Equal(t, "b", f.Name)
	require.Equal(t, s.Journal().Files(), s.Files())
	require.True(t, s.Refs().Intact(f), "an owned file is always intact")
	require.True(t, s.ServeHas(c), "the event made the block served")
}

// Recording events while blocks are served, files listed, folders shared in place checked and a
// download runs takes the parts' locks from many goroutines at once: none may wait for another in
// a cycle (the test would hang to its deadline), and -race sees no unguarded state.
func TestThePartsOfAStoreDoNotDeadlock(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	src := t.TempDir()
	for i := range 8 {
		require.NoError(t, os.WriteFile(filepath.Join(src, string(rune('a'+i))), bytes.Repeat([]byte{byte(i)}, 3000), 0o644))
	}
	shared, err := s.AddTree(t.Context(), src, store.AddOptions{Reference: true})
	require.NoError(t, err)
	owned, err := s.Add(t.Context(), bytes.NewReader(randomBytes(7, 300_000)), "owned", store.AddOptions{ChunkSize: 4096})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const rounds = 50
	var wg sync.WaitGroup
	wg.Go(func() { // pins and unpins: events that change the index
		for i := range rounds {
			if ctx.Err() != nil {
				return
			}
			// The other goroutine's remove may have just taken the file away: nothing to pin.
			if i%2 == 0 {
				_, _ = s.Pin(owned.Root)
			} else {
				_, _ = s.Unpin(owned.Root)
			}
		}
	})
	wg.Go(func() { // removes and adds a file again: events that drop the served set and the leaf map
		for range rounds {
			if err := s.Remove(owned.Root); err != nil && !errors.Is(err, store.ErrPinned) {
				return
			}
			_, _ = s.Unpin(owned.Root)
			if _, err := s.Add(ctx, bytes.NewReader(randomBytes(7, 300_000)), "owned", store.AddOptions{ChunkSize: 4096}); err != nil {
				return
			}
		}
	})
	wg.Go(func() { // serves blocks, of both files
		for range rounds {
			for _, c := range s.Served() {
				_, _ = s.ServeBlock(ctx, c, nil)
			}
			_ = s.ServeHas(shared.Root)
		}
	})
	wg.Go(func() { // lists and checks
		for range rounds {
			_ = s.Files()
			_ = s.CheckFiles()
			_, _, _ = s.Replayed()
		}
	})
	wg.Go(func() { // a download that starts and fails
		for range rounds / 5 {
			d, err := s.StartDownload(shared.Root, "again", "")
			if err != nil {
				return
			}
			_, _ = d.Has(ctx, shared.Root)
			_ = d.Fail(context.Canceled)
		}
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the store's parts deadlocked")
	}
	_, same, err := s.Replayed()
	require.NoError(t, err)
	require.True(t, same)
}
