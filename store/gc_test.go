package store_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/unixfs"
)

// GC must not take the blocks of an import that has not recorded its file yet for garbage.
func TestGCDoesNotRunDuringAnImport(t *testing.T) {
	s := open(t, newRepo(t))
	data := randomBytes(5, 8*1024)
	pr, pw := io.Pipe()
	added := make(chan error, 1)
	var f store.File
	go func() {
		var err error
		f, err = s.Add(t.Context(), pr, "slow", store.AddOptions{ChunkSize: 1024})
		added <- err
	}()
	_, err := pw.Write(data[:4096]) // returns once Add is reading: the import is under way
	require.NoError(t, err)

	_, err = s.GC(t.Context())
	require.ErrorIs(t, err, store.ErrBusy)

	_, err = pw.Write(data[4096:])
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	require.NoError(t, <-added)
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed)
	require.Equal(t, data, catAll(t, s, f.Root))
}

// Of a partial download, GC keeps every inner node that is here, even past one that is missing.
func TestGCKeepsWhatIsHereOfAPartialFile(t *testing.T) {
	src := open(t, newRepo(t))
	data := randomBytes(6, 1100*256) // more than 1024 leaves: a root over two inner nodes
	f, err := src.Add(t.Context(), bytes.NewReader(data), "big", store.AddOptions{ChunkSize: 256})
	require.NoError(t, err)

	dir := newRepo(t)
	dst := open(t, dir)
	d, err := dst.StartDownload(f.Root, "big", filepath.Join(t.TempDir(), "big"))
	require.NoError(t, err)
	require.Equal(t, 3, fetchFrom(t, src, d, 3)) // the root and both inner nodes
	require.NoError(t, d.Fail(errors.New("interrupted")))

	root, err := dst.GetBlock(t.Context(), f.Root)
	require.NoError(t, err)
	n, err := unixfs.ParseNode(f.Root, root)
	require.NoError(t, err)
	require.Len(t, n.Children, 2)
	first, second := n.Children[0].Cid, n.Children[1].Cid
	k := first.String()
	require.NoError(t, os.Remove(filepath.Join(dir, "blocks", k[len(k)-3:len(k)-1], k)))

	_, err = dst.GC(t.Context())
	require.NoError(t, err)
	require.True(t, dst.HasBlock(t.Context(), f.Root))
	require.True(t, dst.HasBlock(t.Context(), second))
}

// failingReader yields n bytes of data, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// An import whose input fails after a few MiB removes what it wrote; gc then has nothing to do.
func TestFailedAddRemovesWhatItWrote(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	data := randomBytes(11, 5<<20)
	held, err := s.Add(t.Context(), bytes.NewReader(data[:1<<20]), "first MiB", store.AddOptions{})
	require.NoError(t, err)

	cause := errors.New("the disk went away")
	_, err = s.Add(t.Context(), &failingReader{data: data[:3<<20+5], err: cause}, "broken", store.AddOptions{})
	require.ErrorIs(t, err, cause)
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed, "the failed import left nothing behind")
	require.Equal(t, 1, res.Kept, "the first MiB, which another file needs, stayed")
	require.Equal(t, data[:1<<20], catAll(t, s, held.Root))
}
