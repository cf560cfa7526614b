//go:build !linux

package store

import "io/fs"

// sysStat returns nothing where os.FileInfo carries no change time or inode (Windows, and systems
// whose stat fields this package does not read): a file's version is then its size and
// modification time alone.
func sysStat(fs.FileInfo) (ctime int64, ino, dev uint64) { return 0, 0, 0 }
