//go:build unix

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// openNoFollow opens path for reading and writing; a symbolic link there is an error (ELOOP).
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
}
