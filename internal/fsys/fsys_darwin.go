package fsys

import (
	"os"

	"golang.org/x/sys/unix"
)

// Datasync flushes f to stable storage: File.Sync is F_FULLFSYNC on macOS, which also empties
// the drive's cache (plain fsync does not).
func Datasync(f *os.File) error { return f.Sync() }

// DatasyncBatched writes f out to the drive with a plain fsync, leaving the drive's own cache to
// a Datasync or SyncDir that follows (F_FULLFSYNC empties the whole cache, every file's data at
// once, and costs milliseconds each: a batch of files needs it once, at the end).
func DatasyncBatched(f *os.File) error {
	return control(f, func(fd int) error { return unix.Fsync(fd) })
}

// Preallocate reserves size bytes for f (contiguous if it can, else anywhere) and extends it to
// size, so that a full disk shows up now. File systems that cannot reserve get a sparse file.
func Preallocate(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if more := size - st.Size(); more > 0 {
		_ = control(f, func(fd int) error {
			fs := unix.Fstore_t{Flags: unix.F_ALLOCATECONTIG, Posmode: unix.F_PEOFPOSMODE, Length: more}
			if err := unix.FcntlFstore(uintptr(fd), unix.F_PREALLOCATE, &fs); err == nil {
				return nil
			}
			fs.Flags = unix.F_ALLOCATEALL
			return unix.FcntlFstore(uintptr(fd), unix.F_PREALLOCATE, &fs)
		})
	}
	return extend(f, size)
}

// OpenUncached opens path for writing with F_NOCACHE: the data bypasses the unified buffer
// cache. macOS needs no alignment for it. A symbolic link at path is an error.
func OpenUncached(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if err := control(f, func(fd int) error { _, err := unix.FcntlInt(uintptr(fd), unix.F_NOCACHE, 1); return err }); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// IsUncachedRefused is false on macOS: F_NOCACHE writes fail only as ordinary writes do.
func IsUncachedRefused(error) bool { return false }

// WriteBehind does nothing on macOS, which has no write-back hint.
func WriteBehind(*os.File, int64, int64) {}

// SyncFS returns ErrUnsupported here: the caller syncs each file.
func SyncFS(string) error { return ErrUnsupported }

// HasSyncFS reports whether SyncFS is supported here: it is not.
func HasSyncFS() bool { return false }
