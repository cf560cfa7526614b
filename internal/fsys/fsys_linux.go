package fsys

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Datasync flushes f's data and the metadata needed to read it back (its size), not its times.
func Datasync(f *os.File) error {
	return control(f, func(fd int) error { return unix.Fdatasync(fd) })
}

// DatasyncBatched is Datasync; see the macOS version for why it exists.
func DatasyncBatched(f *os.File) error { return Datasync(f) }

// Preallocate reserves size bytes for f from its start, extending it to size, so that writes
// land in allocated space and a full disk shows up now. File systems without fallocate get a
// sparse file of that size.
func Preallocate(f *os.File, size int64) error {
	err := control(f, func(fd int) error { return unix.Fallocate(fd, 0, 0, size) })
	if errors.Is(err, unix.EOPNOTSUPP) {
		return extend(f, size)
	}
	return err
}

// OpenUncached opens path for writing with O_DIRECT: buffers, offsets and lengths must be
// aligned (4096 bytes covers every logical block size in use), and a file system may still
// refuse a write (see IsUncachedRefused). Where the file system has no O_DIRECT (tmpfs) the open
// fails and the caller writes through the page cache. A symbolic link at path is an error.
func OpenUncached(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT|unix.O_NOFOLLOW, 0)
}

// IsUncachedRefused reports whether a write to a file from OpenUncached failed only because the
// file system takes no direct writes (it then takes ordinary ones).
func IsUncachedRefused(err error) bool { return errors.Is(err, unix.EINVAL) }

// WriteBehind starts write-back of n bytes of f at off (n = 0: to the end) without waiting, so
// the disk works while the caller goes on and a later sync has little left to do.
func WriteBehind(f *os.File, off, n int64) {
	_ = control(f, func(fd int) error { return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE) })
}

// SyncFS makes everything written to the file system holding path durable with one call
// (syncfs), rather than one fsync per file: a tree of many small files is synced at once.
func SyncFS(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = control(d, func(fd int) error { return unix.Syncfs(fd) })
	return errors.Join(err, d.Close())
}

// HasSyncFS reports whether SyncFS is supported here, without syncing anything.
func HasSyncFS() bool { return true }
