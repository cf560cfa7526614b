package store

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// countBlocks counts the block files under the repo's blocks/.
func countBlocks(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, blocksDir), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	}))
	return n
}

// An import that runs into a full disk removes the blocks it wrote, and only those: a block that
// was here before (another file's) stays.
func TestAddIntoAFullDiskLeavesNoBlocks(t *testing.T) {
	dir := t.TempDir()
	_, err := Init(dir)
	require.NoError(t, err)
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()

	data := make([]byte, 8*1024)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(data)
	kept, err := s.Add(t.Context(), bytes.NewReader(data[:1024]), "first chunk", AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	require.Equal(t, 1, countBlocks(t, dir))

	writes := 0
	s.blocks.fault = func(cid.Cid) error {
		if writes++; writes > 4 {
			return syscall.ENOSPC
		}
		return nil
	}
	_, err = s.Add(t.Context(), bytes.NewReader(data), "big", AddOptions{ChunkSize: 1024})
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, 1, countBlocks(t, dir), "only the block of the file held before is left")
	s.blocks.fault = nil
	_, err = s.GetBlock(t.Context(), kept.Root)
	require.NoError(t, err)
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed, "nothing left for gc")
	_, err = os.Stat(dir)
	require.NoError(t, err)
}

// While a fetch keeps gc from running, a failed import cannot clean up: its error says to run gc,
// which then reclaims what it left.
func TestFailedAddDuringAFetchSaysToRunGC(t *testing.T) {
	dir := t.TempDir()
	_, err := Init(dir)
	require.NoError(t, err)
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	root, err := cid.Decode("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	require.NoError(t, err)
	d, err := s.StartDownload(root, "elsewhere", "")
	require.NoError(t, err)

	writes := 0
	s.blocks.fault = func(cid.Cid) error {
		if writes++; writes > 2 {
			return syscall.ENOSPC
		}
		return nil
	}
	data := make([]byte, 8*1024)
	_, _ = rand.NewChaCha8([32]byte{8}).Read(data)
	_, err = s.Add(t.Context(), bytes.NewReader(data), "big", AddOptions{ChunkSize: 1024})
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorContains(t, err, "run `peer gc`")
	s.blocks.fault = nil
	require.NoError(t, d.Fail(nil))
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, res.Removed, "the two blocks written before the disk filled")
}
