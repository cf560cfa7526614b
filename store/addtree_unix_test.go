//go:build unix

package store_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// A folder whose import fails partway (here on a named pipe after a file of 3 MiB) leaves no
// block behind.
func TestFailedAddTreeRemovesWhatItWrote(t *testing.T) {
	s := open(t, newRepo(t))
	root := filepath.Join(t.TempDir(), "album")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a.bin"), randomBytes(12, 3<<20), 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "z-pipe"), 0o644))
	_, err := s.AddTree(t.Context(), root, store.AddOptions{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "z-pipe")
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed, "the failed import left nothing behind")
	require.Empty(t, s.Files())
}
