package store_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
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

// A CID finds its offer however it is written: CIDv1 in base32 of either case, another base,
// or the CIDv0 of the same DAG; a term that is not a CID matches names only.
func TestSearchByCIDInAnyForm(t *testing.T) {
	s := open(t, newRepo(t))
	res, err := store.Hash(t.Context(), bytes.NewReader(randomBytes(7, 5000)), store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	root := res.Root
	require.Equal(t, uint64(cid.DagProtobuf), root.Type(), "several chunks: the root is a dag-pb node")
	require.NoError(t, s.Record(store.Event{Type: store.AnnounceSeen, Root: root.String(), Name: "a.bin", Size: 5000, Peer: "p1"}))
	b58, err := root.StringOfBase(multibase.Base58BTC)
	require.NoError(t, err)
	for _, term := range []string{
		root.String(),
		"B" + strings.ToUpper(root.String()[1:]),
		b58,
		cid.NewCidV0(root.Hash()).String(),
		" " + root.String() + " ",
	} {
		offers := s.Search(term, time.Hour)
		require.Len(t, offers, 1, term)
		require.Equal(t, root.String(), offers[0].CID)
	}
	require.Empty(t, s.Search(strings.ToUpper(root.String()[1:]), time.Hour), "no multibase prefix: not a CID")
}
