//go:build unix

package store_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// allocated is how many bytes of disk path takes (its size may be larger: a sparse file).
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}
