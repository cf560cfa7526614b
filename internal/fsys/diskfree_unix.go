//go:build linux || darwin || freebsd

package fsys

import "golang.org/x/sys/unix"

// DiskFree is the bytes an unprivileged user can still write on the file system that holds path
// (statfs: available blocks times the block size).
func DiskFree(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil // the field types differ by platform
}
