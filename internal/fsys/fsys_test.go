package fsys_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/internal/fsys"
)

// TestLock: a second descriptor cannot take a held lock, the holder's bytes stay readable while
// it is held (the PID the store writes there), and Unlock or Close frees it.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	a, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer a.Close()
	require.NoError(t, fsys.Lock(a))
	_, err = a.WriteAt([]byte("1234\n"), 0)
	require.NoError(t, err)

	b, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer b.Close()
	require.ErrorIs(t, fsys.Lock(b), fsys.ErrLocked)
	got, err := os.ReadFile(path)
	require.NoError(t, err, "a held lock leaves the file readable")
	require.Equal(t, "1234\n", string(got))

	require.NoError(t, fsys.Unlock(a))
	require.NoError(t, fsys.Lock(b), "free after Unlock")
	require.NoError(t, b.Close())

	c, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, fsys.Lock(c), "free after the holder's Close")
}

// TestSyncAndPreallocate: the sync calls succeed on a real file and directory, and Preallocate
// makes the file that long without losing what it holds.
func TestSyncAndPreallocate(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write([]byte("head"))
	require.NoError(t, err)
	fsys.WriteBehind(f, 0, 0)
	require.NoError(t, fsys.Datasync(f))
	require.NoError(t, fsys.Preallocate(f, 1<<20))
	st, err := f.Stat()
	require.NoError(t, err)
	require.EqualValues(t, 1<<20, st.Size())
	require.NoError(t, fsys.Preallocate(f, 10), "never shrinks")
	st, err = f.Stat()
	require.NoError(t, err)
	require.EqualValues(t, 1<<20, st.Size())
	head := make([]byte, 4)
	_, err = f.ReadAt(head, 0)
	require.NoError(t, err)
	require.Equal(t, "head", string(head))
	require.NoError(t, fsys.SyncDir(dir))
}

// TestOpenUncached: where the platform has uncached writes the file opens for writing; elsewhere
// the answer is ErrUnsupported, and the caller writes through the page cache.
func TestOpenUncached(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	f, err := fsys.OpenUncached(path)
	if errors.Is(err, fsys.ErrUnsupported) {
		return
	}
	if err != nil {
		t.Skipf("this file system takes no uncached writes: %v", err) // tmpfs refuses O_DIRECT
	}
	require.NoError(t, f.Close())
}

// TestNetErrors: the error predicates recognize the errors the net package returns here.
func TestNetErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()

	_, err = net.Listen("tcp", addr)
	require.Error(t, err)
	require.True(t, fsys.IsAddrInUse(err), "%v", err)
	require.False(t, fsys.IsConnRefused(err))

	require.NoError(t, ln.Close())
	_, err = net.Dial("tcp", addr)
	require.Error(t, err)
	require.True(t, fsys.IsConnRefused(err), "%v", err)
	require.False(t, fsys.IsAddrInUse(err))
	require.False(t, fsys.IsAddrFamilyUnavailable(err))
}

func TestDiskFree(t *testing.T) {
	free, err := fsys.DiskFree(t.TempDir())
	require.NoError(t, err)
	require.NotZero(t, free, "the temp dir's file system has room")
	_, err = fsys.DiskFree(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}
