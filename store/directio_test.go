package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A direct write lands the same bytes whether the caller's buffer is aligned (written as it is)
// or not (copied to an aligned one first); a write that is not whole pages is refused, for the
// caller to write through the page cache.
func TestDirectWriterAlignedAndUnalignedBuffers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	part, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer part.Close()
	w := openDirect(part)
	if w == nil {
		t.Skip("no O_DIRECT on this file system")
	}
	defer w.close()

	page := bytes.Repeat([]byte{0xA5}, 2*directAlign)
	al := alignedBuf(len(page))
	copy(al, page)
	require.True(t, aligned(al))
	done, err := w.writeAt(al, 0)
	require.NoError(t, err)
	if !done {
		t.Skip("the file system refused direct writes")
	}

	un := alignedBuf(len(page) + 1)[1:]
	require.False(t, aligned(un))
	for i := range un {
		un[i] = byte(i)
	}
	done, err = w.writeAt(un[:len(page)], int64(len(page)))
	require.NoError(t, err)
	require.True(t, done)

	done, err = w.writeAt(page[:100], int64(2*len(page)))
	require.NoError(t, err)
	require.False(t, done, "a partial page goes through the page cache")

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, append(bytes.Clone(page), un[:len(page)]...), got)
}
