package transfer_test

import (
	"context"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
	"peer/transfer"
)

// chainDAG is a file of one byte under a chain of inner nodes, each linking to the next.
func chainDAG(t *testing.T, inner int) dag {
	t.Helper()
	s := newMemStore()
	leaf := []byte{7}
	c, err := cid.NewPrefixV1(cid.Raw, multihash.SHA2_256).Sum(leaf)
	require.NoError(t, err)
	s.Put(c, leaf)
	for range inner {
		b := unixfs.EncodePB(unixfs.PBNode{
			Links: []unixfs.Link{{Cid: c, Tsize: 1}},
			Data:  unixfs.FSData{Type: unixfs.File, FileSize: 1, HasFileSize: true, BlockSizes: []uint64{1}}.Encode(),
		})
		c, err = cid.NewPrefixV1(cid.DagProtobuf, multihash.SHA2_256).Sum(b)
		require.NoError(t, err)
		s.Put(c, b)
	}
	return dag{root: c, store: s}
}

// A fetch bounded by unixfs.MaxDepth takes exactly the DAGs a reader can read: one inner node
// more and both refuse it.
func TestFetchDepthBoundIsTheReaders(t *testing.T) {
	for _, inner := range []int{unixfs.MaxDepth + 1, unixfs.MaxDepth + 2} {
		d := chainDAG(t, inner)
		r := unixfs.NewReader(t.Context(), d.root, func(ctx context.Context, c cid.Cid) ([]byte, error) { return d.store.Get(ctx, c) })
		_, readErr := io.ReadAll(r)
		require.NoError(t, r.Close())

		sd := newSeeder(t, d.store)
		_, tr, ids := newFetcher(t, []seeder{sd})
		got := newCollector()
		_, fetchErr := tr.Fetch(t.Context(), transfer.Request{Root: d.root, Providers: ids, Expand: expand, Deliver: got.deliver, MaxDepth: unixfs.MaxDepth})
		require.Equal(t, readErr == nil, fetchErr == nil, "%d inner nodes: read %v, fetch %v", inner, readErr, fetchErr)
		if inner == unixfs.MaxDepth+1 {
			require.NoError(t, fetchErr)
			requireComplete(t, d, got)
		} else {
			require.ErrorContains(t, fetchErr, "deeper than")
		}
	}
}
