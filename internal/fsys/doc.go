// Package fsys holds the operating-system calls of the store, the daemon and the CLI, so that
// the rest of the code builds and behaves the same on Linux, macOS, Windows and FreeBSD.
//
// Each function does the best the platform offers and says what it does elsewhere:
//
//   - Datasync: fdatasync on Linux; File.Sync elsewhere (F_FULLFSYNC on macOS, FlushFileBuffers
//     on Windows).
//   - DatasyncBatched: Datasync for one of many files synced together, followed by a SyncDir;
//     on macOS a plain fsync, the SyncDir's F_FULLFSYNC then empties the drive's cache for all.
//   - SyncDir: fsync of a directory (F_FULLFSYNC on macOS), so a rename or a new entry in it
//     survives a crash; a no-op on Windows, where directory entries are not synced apart.
//   - Lock/Unlock: an exclusive, non-blocking advisory lock that the system drops when the
//     holder's descriptor closes, for any reason (flock on unix; LockFileEx on Windows, on a
//     byte far past the end of the file, so the file's own bytes stay readable by others).
//   - Preallocate: fallocate on Linux; F_PREALLOCATE then ftruncate on macOS; ftruncate
//     elsewhere (a sparse file: a full disk shows up later, as a write error).
//   - OpenUncached: writes that skip the page cache (O_DIRECT on Linux, F_NOCACHE on macOS);
//     ErrUnsupported elsewhere, where the caller writes through the page cache.
//   - OpenNoFollow: open a file for reading and writing, never through a symbolic link.
//   - DiskFree: the bytes left for the user on the file system that holds a path (statfs;
//     GetDiskFreeSpaceEx on Windows).
//   - OpenBrowser: open a URL in the default browser (xdg-open, open, or rundll32
//     url.dll,FileProtocolHandler on Windows), without waiting.
//   - WriteBehind: start write-back of a range without waiting (sync_file_range on Linux); a
//     no-op elsewhere.
//   - ProcessRunning; IsConnRefused, IsConnReset, IsAddrInUse, IsAddrFamilyUnavailable: network errors compared the way the
//     platform reports them (the WSA codes on Windows, whose syscall.E* values are made up).
//
// The files are named by platform: _linux.go, _darwin.go, _windows.go, _unix.go (every unix)
// and _other.go (what is neither Linux nor macOS).
package fsys
