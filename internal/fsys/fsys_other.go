//go:build !linux && !darwin

package fsys

import "os"

// Datasync flushes f to stable storage (File.Sync: fsync, or FlushFileBuffers on Windows).
func Datasync(f *os.File) error { return f.Sync() }

// DatasyncBatched is Datasync; see the macOS version for why it exists.
func DatasyncBatched(f *os.File) error { return Datasync(f) }

// Preallocate extends f to size bytes. Here that makes a sparse file: space is taken as it is
// written, so a full disk shows up as a write error later.
func Preallocate(f *os.File, size int64) error { return extend(f, size) }

// OpenUncached returns ErrUnsupported here: the caller writes through the page cache.
func OpenUncached(string) (*os.File, error) { return nil, ErrUnsupported }

// IsUncachedRefused is false here: there are no uncached writes.
func IsUncachedRefused(error) bool { return false }

// WriteBehind does nothing here: there is no write-back hint.
func WriteBehind(*os.File, int64, int64) {}

// SyncFS returns ErrUnsupported here: the caller syncs each file.
func SyncFS(string) error { return ErrUnsupported }

// HasSyncFS reports whether SyncFS is supported here: it is not.
func HasSyncFS() bool { return false }
