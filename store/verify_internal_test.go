package store

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// A block verified under a settled stat of its file is not hashed again while that stat holds;
// a new version of the file (another inode, same size and mtime) is hashed again, and caught.
func TestServeRemembersWhatItVerified(t *testing.T) {
	dir := t.TempDir()
	_, err := Init(dir)
	require.NoError(t, err)
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	// The files are just written: seen from an hour later their stats are settled.
	s.journal.now = func() time.Time { return time.Now().Add(time.Hour) }

	data := make([]byte, 8*1024)
	_, _ = rand.NewChaCha8([32]byte{43}).Read(data)
	path := filepath.Join(t.TempDir(), "shared.bin")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	in, err := os.Open(path)
	require.NoError(t, err)
	f, err := s.Add(t.Context(), in, "shared.bin", AddOptions{ChunkSize: 1024, Reference: true, Path: path})
	in.Close()
	require.NoError(t, err)
	rb, err := s.GetBlock(t.Context(), f.Root)
	require.NoError(t, err)
	n, err := unixfs.ParseNode(f.Root, rb)
	require.NoError(t, err)
	leaf := n.Children[5].Cid

	serve := func(c cid.Cid) error {
		_, err := s.ServeBlock(t.Context(), c, nil)
		return err
	}
	for range 3 {
		require.NoError(t, serve(leaf))
		require.NoError(t, serve(f.Root))
	}
	require.EqualValues(t, 2, s.refs.hashed.Load(), "each block hashed once")

	// Another file, same size, same mtime, one byte different, in its place.
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Rename(path, path+".old")) // kept: the new file cannot reuse its inode
	edited := bytes.Clone(data)
	edited[5*1024] ^= 0x80
	require.NoError(t, os.WriteFile(path, edited, 0o644))
	require.NoError(t, os.Chtimes(path, time.Time{}, fi.ModTime()))
	require.ErrorIs(t, serve(leaf), ErrNotFound)
	require.EqualValues(t, 3, s.refs.hashed.Load())
	cur, ok := s.File(f.Root)
	require.True(t, ok)
	require.Equal(t, Changed, cur.State)
}

// A stat that is not settled yet (changed within racyWindow) is not remembered: an edit in the
// same clock tick could leave it as it was.
func TestUnsettledStatIsNotRemembered(t *testing.T) {
	now := time.Now()
	st := fileStat{size: 1, mtime: now.Add(-time.Hour).UnixNano(), ctime: now.UnixNano()}
	require.False(t, st.settled(now))
	require.True(t, st.settled(now.Add(racyWindow+time.Millisecond)))

	var v verifiedSet
	for i := range 2*ownedGeneration + 1 {
		v.add(strconv.Itoa(i), st)
	}
	require.LessOrEqual(t, len(v.cur)+len(v.old), 2*ownedGeneration, "bounded")
	require.True(t, v.has(strconv.Itoa(2*ownedGeneration), st))
	require.False(t, v.has(strconv.Itoa(2*ownedGeneration), fileStat{size: 2}))
}

// BenchmarkServeInPlace serves every leaf of a 64 MiB file shared in place: "hashed" verifies
// each (as the first serve of a file's version does), "remembered" only reads (every later one).
func BenchmarkServeInPlace(b *testing.B) {
	dir := b.TempDir()
	_, err := Init(dir)
	require.NoError(b, err)
	s, err := Open(dir)
	require.NoError(b, err)
	defer s.Close()
	s.journal.now = func() time.Time { return time.Now().Add(time.Hour) }
	data := make([]byte, 64<<20)
	_, _ = rand.NewChaCha8([32]byte{44}).Read(data)
	path := filepath.Join(b.TempDir(), "shared.bin")
	require.NoError(b, os.WriteFile(path, data, 0o644))
	in, err := os.Open(path)
	require.NoError(b, err)
	f, err := s.Add(b.Context(), in, "shared.bin", AddOptions{Reference: true, Path: path})
	in.Close()
	require.NoError(b, err)
	var kids []cid.Cid
	require.NoError(b, s.blocks.walk(b.Context(), f.Root, f.Size, func(c cid.Cid, _ unixfs.Node, _ uint64) error {
		if c.Prefix().Codec == cid.Raw {
			kids = append(kids, c)
		}
		return nil
	}))
	for _, mode := range []string{"hashed", "remembered"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if mode == "hashed" {
					s.refs.forgetRefCheck(f.CID)
				}
				for _, c := range kids {
					if _, err := s.ServeBlock(b.Context(), c, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
