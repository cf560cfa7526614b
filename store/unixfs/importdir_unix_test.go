//go:build unix

package unixfs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// TestImportTreeErrors: what cannot be imported is an error naming it, and
// nothing under a failed folder is reported as done.
func TestImportTreeErrors(t *testing.T) {
	root := filepath.Join(t.TempDir(), "bad")
	for i := range 40 { // enough small files to be in flight when the error comes
		writeFile(t, filepath.Join(root, fmt.Sprintf("f%02d", i)), []byte{byte(i)})
	}
	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "m-pipe"), 0o644))
	_, err := unixfs.ImportTree(t.Context(), root, unixfs.TreeOptions{}, nil)
	require.ErrorContains(t, err, "m-pipe is not a regular file, directory or symbolic link")

	root2 := filepath.Join(t.TempDir(), "names")
	writeFile(t, filepath.Join(root2, "ok"), nil)
	writeFile(t, filepath.Join(root2, "line\nbreak"), nil)
	_, err = unixfs.ImportTree(t.Context(), root2, unixfs.TreeOptions{}, nil)
	require.ErrorContains(t, err, "control character 0x0a")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = unixfs.ImportTree(ctx, filepath.Join(root2, ".."), unixfs.TreeOptions{}, nil)
	require.ErrorIs(t, err, context.Canceled)

	_, err = unixfs.ImportTree(t.Context(), filepath.Join(root, "absent"), unixfs.TreeOptions{}, nil)
	require.ErrorIs(t, err, os.ErrNotExist)
}
