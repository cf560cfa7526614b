//go:build linux

package store

import (
	"io/fs"
	"syscall"
)

// sysStat returns a file's change time (nanoseconds), inode and device.
func sysStat(fi fs.FileInfo) (ctime int64, ino, dev uint64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0
	}
	return st.Ctim.Nano(), st.Ino, st.Dev
}
