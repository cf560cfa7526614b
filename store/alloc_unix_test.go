//go:build unix

package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"peer/store"
	"peer/store/unixfs"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

// allocated is how many bytes of disk path takes (its size may be larger: a sparse file).
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

// A root that claims a large file reserves no disk for the claim: space is reserved as verified
// leaves arrive, and a download that got no leaf deletes its partial file when it fails.
func TestAClaimedSizeReservesNothing(t *testing.T) {
	const leaf, n = 1 << 20, 256 // a root claiming 256 MiB
	first := randomBytes(14, leaf)
	links := make([]unixfs.Link, n)
	sizes := make([]uint64, n)
	for i := range links {
		b := first
		if i > 0 {
			b = []byte{byte(i), byte(i >> 8)} // leaves nobody will send
		}
		links[i] = unixfs.Link{Cid: rawCID(t, b), Tsize: leaf}
		sizes[i] = leaf
	}
	block := unixfs.EncodePB(unixfs.PBNode{Links: links, Data: unixfs.FSData{Type: unixfs.File, FileSize: n * leaf, HasFileSize: true, BlockSizes: sizes}.Encode()})
	root, err := cid.NewPrefixV1(cid.DagProtobuf, mh.SHA2_256).Sum(block)
	require.NoError(t, err)

	out := filepath.Join(t.TempDir(), "claim")
	part := store.PartPath(out, root)
	dst := open(t, newRepo(t))
	d, err := dst.StartDownload(root, "claim", out)
	require.NoError(t, err)
	_, err = d.Expand(root, block)
	require.NoError(t, err)
	require.NoError(t, d.Deliver(root, block))
	require.Less(t, allocated(t, part), int64(leaf), "the root's claim reserved disk")
	require.NoError(t, d.Fail(errors.New("no leaves")))
	_, err = os.Stat(part)
	require.ErrorIs(t, err, os.ErrNotExist, "a download that got no leaf leaves no partial file")

	// With a verified leaf, the reservation follows it, a step ahead at most.
	d, err = dst.StartDownload(root, "claim", out)
	require.NoError(t, err)
	_, err = d.Expand(root, block)
	require.NoError(t, err)
	require.NoError(t, d.Deliver(links[0].Cid, first))
	require.LessOrEqual(t, allocated(t, part), int64(leaf+64<<20))
	require.NoError(t, d.Fail(errors.New("interrupted")))
	_, err = os.Stat(part)
	require.NoError(t, err, "a download that got data keeps it for resuming")
}
