package store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/unixfs"
)

// A partial file planted where a download would write (a link to another file, or a regular file
// this repo never started) is refused with an error naming it, and neither it nor what a link
// points at is written.
func TestPlantedPartialFileIsNeitherFollowedNorConsumed(t *testing.T) {
	src := open(t, newRepo(t))
	f, err := src.Add(t.Context(), bytes.NewReader(randomBytes(11, 5000)), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	dir := t.TempDir()
	out := filepath.Join(dir, "OUT")
	part := store.PartPath(out, f.Root)

	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious"), 0o644))
	require.NoError(t, os.Symlink(victim, part))
	dst := open(t, newRepo(t))
	_, err = dst.StartDownload(f.Root, "f", out)
	require.ErrorIs(t, err, store.ErrUnknownPart)
	require.ErrorContains(t, err, part)
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "precious", string(got), "nothing written through the link")
	st, err := os.Lstat(part)
	require.NoError(t, err)
	require.NotZero(t, st.Mode()&os.ModeSymlink, "the link is left as it was")

	require.NoError(t, os.Remove(part))
	require.NoError(t, os.WriteFile(part, []byte("someone else's"), 0o644))
	_, err = dst.StartDownload(f.Root, "f", out)
	require.ErrorIs(t, err, store.ErrUnknownPart)
	got, err = os.ReadFile(part)
	require.NoError(t, err)
	require.Equal(t, "someone else's", string(got), "an unknown partial file is not consumed")
	_, ok := dst.File(f.Root)
	require.False(t, ok, "a refused download records nothing")

	// The repo's own partial file is resumed; replaced by a link after the failure, it is refused.
	require.NoError(t, os.Remove(part))
	d, err := dst.StartDownload(f.Root, "f", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, 3)
	require.NoError(t, d.Fail(errors.New("interrupted")))
	rec, ok := dst.File(f.Root)
	require.True(t, ok)
	require.Equal(t, part, rec.Part, "the log records the partial file")
	d, err = dst.StartDownload(f.Root, "f", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, 0)
	require.Equal(t, uint64(2048), d.Found(), "the known partial file is resumed")
	require.NoError(t, d.Fail(errors.New("interrupted again")))
	require.NoError(t, os.Remove(part))
	require.NoError(t, os.Symlink(victim, part))
	_, err = dst.StartDownload(f.Root, "f", out)
	require.Error(t, err)
	got, err = os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "precious", string(got))
}

// A link planted at the output itself is replaced by the finished file, not written through.
func TestCompleteReplacesALinkAtTheOutput(t *testing.T) {
	src := open(t, newRepo(t))
	data := randomBytes(12, 5000)
	f, err := src.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	dir := t.TempDir()
	out, victim := filepath.Join(dir, "OUT"), filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious"), 0o644))
	require.NoError(t, os.Symlink(victim, out))

	dst := open(t, newRepo(t))
	d, err := dst.StartDownload(f.Root, "f", out)
	require.NoError(t, err)
	fetchFrom(t, src, d, -1)
	require.NoError(t, d.Complete())
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "precious", string(got))
	st, err := os.Lstat(out)
	require.NoError(t, err)
	require.True(t, st.Mode().IsRegular())
	got, err = os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// A file whose name takes the 255 bytes a name may have is fetched under that name: the partial
// file's name does not grow with it.
func TestDownloadUnderALongestName(t *testing.T) {
	src := open(t, newRepo(t))
	data := randomBytes(13, 3000)
	f, err := src.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), strings.Repeat("n", 251)+".iso")
	dst := open(t, newRepo(t))
	d, err := dst.StartDownload(f.Root, filepath.Base(out), out)
	require.NoError(t, err)
	fetchFrom(t, src, d, -1)
	require.NoError(t, d.Complete())
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// A node with more links than its file has bytes is impossible (every leaf holds at least one
// byte): a root of 1,024 links that claims a file of 0 bytes, every link of 0 bytes, is refused
// before any child is asked for.
func TestDownloadRefusesMoreLinksThanBytes(t *testing.T) {
	links := make([]unixfs.Link, 1024)
	sizes := make([]uint64, len(links))
	for i := range links {
		links[i] = unixfs.Link{Cid: rawCID(t, []byte{byte(i), byte(i >> 8)})}
	}
	block := unixfs.EncodePB(unixfs.PBNode{Links: links, Data: unixfs.FSData{Type: unixfs.File, FileSize: 0, HasFileSize: true, BlockSizes: sizes}.Encode()})
	root, err := cid.NewPrefixV1(cid.DagProtobuf, mh.SHA2_256).Sum(block)
	require.NoError(t, err)
	dst := open(t, newRepo(t))
	d, err := dst.StartDownload(root, "bomb", "")
	require.NoError(t, err)
	_, err = d.Expand(root, block)
	require.ErrorIs(t, err, store.ErrInconsistentDAG)
	require.NoError(t, d.Fail(err))
}
