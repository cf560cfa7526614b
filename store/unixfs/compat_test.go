package unixfs_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// requireSameDAG checks that our import of data gives, block for block and in
// the same order, what boxo's balanced importer gives.
func requireSameDAG(t *testing.T, data []byte, chunkSize, maxLinks int) {
	t.Helper()
	wantRoot, want := boxoImport(t, data, chunkSize, maxLinks)
	res, got := ourImport(t, data, chunkSize, maxLinks)
	require.Equal(t, wantRoot.String(), res.Root.String(), "root CID")
	require.Equal(t, uint64(len(data)), res.Size)
	require.Equal(t, len(want), res.Blocks, "block count")
	require.Len(t, got, len(want), "blocks stored")
	for i := range want {
		require.Equal(t, want[i].Cid.String(), got[i].Cid.String(), "block %d CID", i)
		require.True(t, bytes.Equal(want[i].Data, got[i].Data), "block %d (%s) bytes differ", i, want[i].Cid)
	}
	require.Equal(t, res.Root, got[len(got)-1].Cid, "root is stored last")
}

func TestImportMatchesBoxoDefaultChunk(t *testing.T) {
	const c = unixfs.DefaultChunkSize
	for _, size := range []int{0, 1, 1000, c - 1, c, c + 1, 3*c + 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			requireSameDAG(t, randomBytes(uint64(size), size), c, unixfs.MaxLinks)
		})
	}
}

func TestImportMatchesBoxoSmallChunks(t *testing.T) {
	const c = 256
	sizes := []int{
		0, 1, c - 1, c, c + 1, 5*c + 3,
		unixfs.MaxLinks * c,         // one full level
		unixfs.MaxLinks*c + 1,       // a second level, one byte in it
		(unixfs.MaxLinks+1)*c + 7,   // two levels
		2*unixfs.MaxLinks*c + 100*c, // two levels, three subtrees
	}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			requireSameDAG(t, randomBytes(uint64(size), size), c, unixfs.MaxLinks)
		})
	}
}

// TestImportMatchesBoxoDeepTrees lowers the fan-out so that three, four and
// more levels take few chunks, and compares every chunk count up to a bound.
func TestImportMatchesBoxoDeepTrees(t *testing.T) {
	const c = 256
	for _, maxLinks := range []int{2, 3, 4, 7} {
		for chunks := 0; chunks <= 70; chunks++ {
			for _, tail := range []int{0, 1, c - 1} {
				size := chunks*c + tail
				if chunks == 0 && tail == c-1 {
					continue
				}
				t.Run(fmt.Sprintf("links=%d/size=%d", maxLinks, size), func(t *testing.T) {
					requireSameDAG(t, randomBytes(uint64(size), size), c, maxLinks)
				})
			}
		}
	}
}

// TestImportRepeatedChunks checks a file whose chunks are all the same: the
// same leaf is stored once per occurrence, as boxo does.
func TestImportRepeatedChunks(t *testing.T) {
	requireSameDAG(t, make([]byte, 20*256+10), 256, 4)
}

func TestEmptyFileCID(t *testing.T) {
	res, blocks := ourImport(t, nil, 0, unixfs.MaxLinks)
	require.Equal(t, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", res.Root.String())
	require.Equal(t, uint64(0), res.Size)
	require.Equal(t, 1, res.Blocks)
	require.Len(t, blocks, 1)
	require.Empty(t, blocks[0].Data)
}

// TestKnownVectors pins root CIDs so that a change in boxo and in this
// package at once cannot go unnoticed. The values were computed with boxo
// v0.41.0's balanced importer under the unixfs-v1-2025 settings.
func TestKnownVectors(t *testing.T) {
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i % 251)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"hello world", []byte("hello world"), "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"},
		{"1 MiB + 1 of i%251", pattern(unixfs.DefaultChunkSize + 1), "bafybeidjogjfwuhbzwopgd4bn3skcf5m6oz72xshywcndzxgqb623nfclu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := unixfs.Import(t.Context(), bytes.NewReader(tt.data), unixfs.ImportOptions{}, nil)
			require.NoError(t, err)
			require.Equal(t, tt.want, res.Root.String())
			require.Equal(t, uint64(len(tt.data)), res.Size)
			c, err := cid.Decode(tt.want)
			require.NoError(t, err)
			require.NoError(t, unixfs.CheckCID(c))
		})
	}
}
