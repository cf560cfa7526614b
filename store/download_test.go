package store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/unixfs"
)

func rawCID(t *testing.T, b []byte) cid.Cid {
	t.Helper()
	c, err := cid.NewPrefixV1(cid.Raw, mh.SHA2_256).Sum(b)
	require.NoError(t, err)
	return c
}

// A DAG whose blocksizes understate a leaf (every hash is right: whoever made the root made it
// so) is refused: written at its offsets, the leaf would overrun the next one.
func TestDownloadRefusesALeafOfTheWrongSize(t *testing.T) {
	big, small := randomBytes(1, 1000), randomBytes(2, 10)
	a, b := rawCID(t, big), rawCID(t, small)
	block := unixfs.EncodePB(unixfs.PBNode{
		Links: []unixfs.Link{{Cid: a, Tsize: 1000}, {Cid: b, Tsize: 10}},
		Data:  unixfs.FSData{Type: unixfs.File, FileSize: 20, HasFileSize: true, BlockSizes: []uint64{10, 10}}.Encode(),
	})
	root, err := cid.NewPrefixV1(cid.DagProtobuf, mh.SHA2_256).Sum(block)
	require.NoError(t, err)

	for _, out := range []string{filepath.Join(t.TempDir(), "out"), ""} {
		s := open(t, newRepo(t))
		d, err := s.StartDownload(root, "lies", out)
		require.NoError(t, err)
		_, err = d.Expand(root, block)
		require.NoError(t, err)
		require.NoError(t, d.Deliver(root, block))
		require.ErrorContains(t, d.Deliver(a, big), "its parent says 10")
		require.NoError(t, d.Deliver(b, small))
		require.NoError(t, d.Fail(errors.New("bad DAG")))
	}
}

// GC waits for a download to end: its blocks are named by no event until it completes.
func TestGCDoesNotRunDuringADownload(t *testing.T) {
	src := open(t, newRepo(t))
	f, err := src.Add(t.Context(), bytes.NewReader(randomBytes(8, 5000)), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	dst := open(t, newRepo(t))

	d, err := dst.StartDownload(f.Root, "f", "")
	require.NoError(t, err)
	require.Equal(t, 2, fetchFrom(t, src, d, 2))
	_, err = dst.GC(t.Context())
	require.ErrorIs(t, err, store.ErrBusy)
	require.NoError(t, d.Fail(errors.New("interrupted")))
	res, err := dst.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed, "a partial file keeps what is here")

	d, err = dst.StartDownload(f.Root, "f", "")
	require.NoError(t, err)
	fetchFrom(t, src, d, -1)
	_, err = dst.GC(t.Context())
	require.ErrorIs(t, err, store.ErrBusy)
	require.NoError(t, d.Complete())
	res, err = dst.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed)
	require.Equal(t, randomBytes(8, 5000), catAll(t, dst, f.Root))
}

// File bytes carried in dag-pb nodes (as older importers make them) land in the output file too.
func TestDownloadWritesInlineData(t *testing.T) {
	pbCID := func(b []byte) cid.Cid {
		c, err := cid.NewPrefixV1(cid.DagProtobuf, mh.SHA2_256).Sum(b)
		require.NoError(t, err)
		return c
	}
	leaf := unixfs.EncodePB(unixfs.PBNode{Data: unixfs.FSData{Type: unixfs.File, Data: []byte("hello "), FileSize: 6, HasFileSize: true}.Encode()})
	world := []byte("world")
	root := unixfs.EncodePB(unixfs.PBNode{
		Links: []unixfs.Link{{Cid: pbCID(leaf), Tsize: uint64(len(leaf))}, {Cid: rawCID(t, world), Tsize: 5}},
		Data:  unixfs.FSData{Type: unixfs.File, Data: []byte(">"), FileSize: 12, HasFileSize: true, BlockSizes: []uint64{6, 5}}.Encode(),
	})
	src := open(t, newRepo(t))
	for _, b := range []struct {
		c    cid.Cid
		data []byte
	}{{pbCID(leaf), leaf}, {rawCID(t, world), world}, {pbCID(root), root}} {
		require.NoError(t, src.PutBlock(b.c, b.data))
	}

	dst := open(t, newRepo(t))
	out := filepath.Join(t.TempDir(), "out")
	d, err := dst.StartDownload(pbCID(root), "inline", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, -1)
	require.NoError(t, d.Complete())
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, ">hello world", string(got))
}

// A download that failed before it got any block leaves no output file and no partial entry,
// and a replay of the log agrees; one that got some bytes stays resumable.
func TestFailedDownloadWithNothingLeavesNothing(t *testing.T) {
	src := open(t, newRepo(t))
	f, err := src.Add(t.Context(), bytes.NewReader(randomBytes(9, 5000)), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	dst := open(t, newRepo(t))
	out := filepath.Join(t.TempDir(), "f")

	d, err := dst.StartDownload(f.Root, "f", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, 0) // nobody sends anything
	require.NoError(t, d.Fail(errors.New("no providers")))
	_, err = os.Stat(store.PartPath(out, f.Root))
	require.ErrorIs(t, err, os.ErrNotExist, "no .part is left")
	_, ok := dst.File(f.Root)
	require.False(t, ok, "no partial entry")
	_, same, err := dst.Replayed()
	require.NoError(t, err)
	require.True(t, same)

	d, err = dst.StartDownload(f.Root, "f", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, 3) // the root and two leaves
	require.NoError(t, d.Fail(errors.New("interrupted")))
	got, ok := dst.File(f.Root)
	require.True(t, ok)
	require.Equal(t, store.Partial, got.State)
	require.Equal(t, uint64(2048), got.Have)
	_, err = os.Stat(store.PartPath(out, f.Root))
	require.NoError(t, err, "a fetch that got bytes keeps them")

	// Resumed, it finds those bytes here and says so; failing again keeps them.
	d, err = dst.StartDownload(f.Root, "f", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, 0)
	require.Equal(t, uint64(2048), d.Found())
	require.Equal(t, uint64(2048), d.Have())
	require.NoError(t, d.Fail(errors.New("interrupted again")))
	_, ok = dst.File(f.Root)
	require.True(t, ok)

	// rm deletes the partial file with the entry.
	require.NoError(t, dst.Remove(f.Root))
	_, err = os.Stat(store.PartPath(out, f.Root))
	require.ErrorIs(t, err, os.ErrNotExist, "rm of a partial fetch deletes its .part")
	_, same, err = dst.Replayed()
	require.NoError(t, err)
	require.True(t, same)
}

// A file being fetched cannot be removed under the fetch.
func TestRemoveRefusesAFetchInProgress(t *testing.T) {
	src := open(t, newRepo(t))
	f, err := src.Add(t.Context(), bytes.NewReader(randomBytes(10, 5000)), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	dst := open(t, newRepo(t))
	out := filepath.Join(t.TempDir(), "f")
	d, err := dst.StartDownload(f.Root, "f", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, 2)
	require.ErrorIs(t, dst.Remove(f.Root), store.ErrFetching)
	require.NoError(t, d.Fail(errors.New("stop")))
	require.NoError(t, dst.Remove(f.Root))
}
