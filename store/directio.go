package store

import (
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"peer/internal/fsys"
	"peer/store/unixfs"
)

// directAlign is the alignment O_DIRECT needs of buffers, offsets and lengths (the page size
// covers every logical block size in use).
const directAlign = 4096

// directWriter writes a download's whole, aligned leaves with O_DIRECT: the bytes go from the
// block's own buffer (or, when that is not aligned, a reused copy) to the disk without passing
// through the page cache. A fetch writes each byte
// once and reads none back, so caching it only costs: on the machines measured here, filling
// fresh page-cache pages cost more CPU than hashing the same bytes. Writes that are not aligned
// (the file's last leaf, odd chunk sizes) go through the ordinary file.
type directWriter struct {
	f   *os.File
	off atomic.Bool // set when the file system refuses direct writes
}

// openDirect opens part again for direct writes, or returns nil where the file system has no
// O_DIRECT (tmpfs, some network file systems) or the platform no uncached writes (see
// fsys.OpenUncached: O_DIRECT on Linux, F_NOCACHE on macOS). It does not follow a link, and gives
// up if the name no longer leads to part's file.
func openDirect(part *os.File) *directWriter {
	f, err := fsys.OpenUncached(part.Name())
	if err != nil {
		return nil
	}
	a, err1 := f.Stat()
	b, err2 := part.Stat()
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		_ = f.Close()
		return nil
	}
	return &directWriter{f: f}
}

var directBufs = sync.Pool{New: func() any {
	b := alignedBuf(unixfs.MaxChunkSize)
	return &b
}}

// aligned reports whether p starts at a multiple of directAlign. Go allocates buffers this large
// (a leaf is usually 1 MiB) in spans of their own that start on page boundaries, so a block read
// into a fresh or pooled buffer is written straight from it.
func aligned(p []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))&(directAlign-1) == 0
}

// alignedBuf returns n bytes whose address is a multiple of directAlign.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := 0
	if rem := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1)); rem != 0 {
		skip = directAlign - rem
	}
	return b[skip : skip+n : skip+n]
}

// writeAt writes p at off directly and reports whether it did; false means the caller must
// write it through the page cache.
func (w *directWriter) writeAt(p []byte, off int64) (bool, error) {
	if w == nil || w.off.Load() || off%directAlign != 0 || len(p)%directAlign != 0 || len(p) > unixfs.MaxChunkSize {
		return false, nil
	}
	buf := p
	if !aligned(p) {
		bp := directBufs.Get().(*[]byte)
		defer directBufs.Put(bp)
		buf = (*bp)[:len(p)]
		copy(buf, p)
	}
	if _, err := w.f.WriteAt(buf, off); err != nil {
		if fsys.IsUncachedRefused(err) {
			w.off.Store(true) // this file system takes no direct writes after all
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (w *directWriter) close() error {
	if w == nil {
		return nil
	}
	return w.f.Close()
}
