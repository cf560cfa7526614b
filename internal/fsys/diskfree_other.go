//go:build !linux && !darwin && !freebsd && !windows

package fsys

// DiskFree is ErrUnsupported on this platform.
func DiskFree(string) (uint64, error) { return 0, ErrUnsupported }
