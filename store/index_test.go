package store_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// Offers that tie on providers and name come in CID order, the same on every call.
func TestSearchOrderIsDeterministic(t *testing.T) {
	s := open(t, newRepo(t))
	var roots []string
	for i := range 6 {
		res, err := store.Hash(t.Context(), bytes.NewReader(randomBytes(uint64(i), 100)), store.AddOptions{})
		require.NoError(t, err)
		roots = append(roots, res.Root.String())
		require.NoError(t, s.Record(store.Event{Type: store.AnnounceSeen, Root: res.Root.String(), Name: "same.iso", Size: 100, Peer: "p1"}))
	}
	slices.Sort(roots)
	for range 10 {
		var got []string
		for _, o := range s.Search("same", time.Hour) {
			got = append(got, o.CID)
		}
		require.Equal(t, roots, got)
	}
}

// Replayed compares like with like while events are being recorded.
func TestReplayedWhileRecording(t *testing.T) {
	s := open(t, newRepo(t))
	res, err := store.Hash(t.Context(), bytes.NewReader([]byte("x")), store.AddOptions{})
	require.NoError(t, err)
	root := res.Root.String()
	stop := make(chan struct{})
	recorded := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				recorded <- nil
				return
			default:
			}
			if err := s.Record(store.Event{Type: store.AnnounceSeen, Root: root, Name: "x", Peer: "p"}); err != nil {
				recorded <- err
				return
			}
		}
	}()
	for range 20 {
		_, same, err := s.Replayed()
		require.NoError(t, err)
		require.True(t, same)
	}
	close(stop)
	require.NoError(t, <-recorded)
}
