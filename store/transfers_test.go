package store_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
)

const (
	rootA = "bafkreiemqpndzewx4bioklzfvhtiegsfny5fxuc3nkjk2vmcpjxiammsti"
	rootB = "bafkreib6epubmabzlffdhckpmvsodmjuro6xuaei2qwevs3t52xnlhaatu"
	rootC = "bafkreibopuwahkkqplrgl3hvwu2wrbnfgoj2eau5eqjzjglsmwq2ewxpyy"
)

// TestTransfersReplayGivesTheLiveList: the transfer list is a projection of the log: replaying it
// from scratch, or reopening the repo (with its snapshot or without), gives the live list.
func TestTransfersReplayGivesTheLiveList(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Record(
		store.Event{Type: store.FetchQueued, Transfer: "aa", Root: rootA, Name: "a.iso", Path: "/tmp/a.iso", Limit: 1000},
		store.Event{Type: store.FetchQueued, Transfer: "bb", Root: rootB, Name: "b.iso", Path: "/tmp/b.iso", Force: true},
		store.Event{Type: store.FetchQueued, Transfer: "cc", Root: rootC, Name: "c.iso", Path: "/tmp/c.iso"},
		store.Event{Type: store.FetchQueued, Transfer: "dd", Root: rootC, Name: "d.iso", Path: "/tmp/d.iso"},
		store.Event{Type: store.FetchStarted, Transfer: "aa", Root: rootA},
		store.Event{Type: store.FetchPromoted, Transfer: "cc", Root: rootC},
		store.Event{Type: store.FetchPaused, Transfer: "aa", Root: rootA, Have: 300, Size: 900},
		store.Event{Type: store.FetchStarted, Transfer: "cc", Root: rootC},
		store.Event{Type: store.FetchFailed, Transfer: "cc", Root: rootC, Error: "no providers"},
		store.Event{Type: store.FetchCanceled, Transfer: "dd", Root: rootC},
		store.Event{Type: store.FetchResumed, Transfer: "aa", Root: rootA},
		store.Event{Type: store.FetchStarted, Transfer: "bb", Root: rootB},
		store.Event{Type: store.FetchCompleted, Transfer: "bb", Root: rootB, Size: 5, Have: 5},
	))
	live := s.Transfers().List()
	states := map[string]store.TransferState{}
	for _, tr := range live {
		states[tr.ID] = tr.State
	}
	require.Equal(t, map[string]store.TransferState{"aa": store.TransferQueued, "bb": store.TransferDone,
		"cc": store.TransferFailed, "dd": store.TransferCanceled}, states)
	require.Equal(t, "aa", live[0].ID, "the active one comes first")
	a, ok := s.Transfers().Get("aa")
	require.True(t, ok)
	require.Equal(t, uint64(300), a.Have)
	require.Equal(t, uint64(900), a.Size)
	require.Equal(t, int64(1000), a.Limit)
	c, _ := s.Transfers().Get("cc")
	require.Equal(t, "no providers", c.Error)
	require.Empty(t, s.Files(), "transfer events leave the index of files alone")

	_, same, err := s.Replayed()
	require.NoError(t, err)
	require.True(t, same, "a replay from scratch gives the live list")

	// Reopen without a snapshot (the whole log replayed), then with one.
	require.NoError(t, s.Close())
	require.NoFileExists(t, filepath.Join(dir, "snapshot.json"))
	s = open(t, dir)
	require.Equal(t, live, s.Transfers().List())
	require.NoError(t, s.Record(store.Event{Type: store.FetchStarted, Transfer: "aa", Root: rootA}))
	for i := range 40 { // enough events for Close to write a snapshot
		id := fmt.Sprintf("x%d", i)
		require.NoError(t, s.Record(store.Event{Type: store.FetchQueued, Transfer: id, Root: rootB},
			store.Event{Type: store.FetchCanceled, Transfer: id, Root: rootB}))
	}
	live = s.Transfers().List()
	require.Len(t, live, 44)
	require.NoError(t, s.Close())
	require.FileExists(t, filepath.Join(dir, "snapshot.json"))
	s = open(t, dir)
	require.Equal(t, live, s.Transfers().List())
}

// TestTransfersQueueOrder: queued transfers run in the order they were queued, except those moved
// to the front (the last moved first); a resumed one goes to the back.
func TestTransfersQueueOrder(t *testing.T) {
	s := open(t, newRepo(t))
	require.NoError(t, s.Record(
		store.Event{Type: store.FetchQueued, Transfer: "1", Root: rootA},
		store.Event{Type: store.FetchQueued, Transfer: "2", Root: rootB},
		store.Event{Type: store.FetchQueued, Transfer: "3", Root: rootC},
		store.Event{Type: store.FetchQueued, Transfer: "4", Root: rootC},
		store.Event{Type: store.FetchPromoted, Transfer: "3"},
		store.Event{Type: store.FetchPromoted, Transfer: "4"},
		store.Event{Type: store.FetchPaused, Transfer: "1"},
		store.Event{Type: store.FetchResumed, Transfer: "1"},
		store.Event{Type: store.FetchPromoted, Transfer: "nobody"}, // unknown: ignored
	))
	var ids []string
	for _, tr := range s.Transfers().List() {
		ids = append(ids, tr.ID)
	}
	require.Equal(t, []string{"4", "3", "2", "1"}, ids)
}
