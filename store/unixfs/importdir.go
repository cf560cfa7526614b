package unixfs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
)

// TreeOptions tune ImportTree.
type TreeOptions struct {
	ImportOptions
	// Hidden includes entries whose names start with '.', which are skipped
	// otherwise (as `ipfs add -r` skips them without --hidden).
	Hidden bool
	// ImportOptions.Progress, if not nil, is called with the bytes of all
	// files read so far; it may be called from several goroutines at once.
	//
	// FileDone, if not nil, is called after each file is imported, with its
	// path and size, from several goroutines at once. It must not block.
	FileDone func(path string, size uint64)
}

// TreeResult describes an imported path.
type TreeResult struct {
	Root   cid.Cid
	Dir    bool   // the path is a directory
	Files  uint64 // regular files imported (1 for a file)
	Size   uint64 // bytes of every file
	Blocks int    // blocks passed to put
}

// ImportTree imports the file, directory or symbolic link at path as
// `ipfs add -r --cid-version=1` does under the unixfs-v1-2025 profile: files
// with Import, directories with BuildDirectory (empty ones included),
// symbolic links as UnixFS Symlink nodes, never followed. A path given that
// is itself a symbolic link is followed, as a shell user naming it expects.
// Hidden entries are skipped unless opts.Hidden; other special files (devices,
// sockets, pipes) are an error naming them.
//
// Blocks go to put as Import gives them, each directory's node after
// everything under it, the root last. put is called from several goroutines
// at once: files no larger than a chunk are imported up to 8 at a time, since
// opening, reading and storing many small files is bound by file-system
// latency; larger files one at a time after a folder's small ones, each hashed
// on opts.Workers goroutines. Only the entries of
// the directories on the current path are held in memory, with at most 8
// small files' bytes in all.
func ImportTree(ctx context.Context, path string, opts TreeOptions, put func(Block) error) (TreeResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return TreeResult{}, err
	}
	t := &treeImporter{opts: opts, put: put, sem: make(chan struct{}, treeParallel)}
	var e DirEntry
	if st.IsDir() {
		e, err = t.dir(ctx, path, 0)
	} else {
		e, err = t.entry(ctx, path, st, opts.Workers)
	}
	if err != nil {
		return TreeResult{}, err
	}
	return TreeResult{Root: e.Cid, Dir: st.IsDir(), Files: t.files.Load(), Size: t.size.Load(), Blocks: int(t.blocks.Load())}, nil
}

// maxTreeDepth bounds how deep ImportTree descends, against directory loops
// made with bind mounts.
const maxTreeDepth = 1024

// treeParallel is how many small files ImportTree imports at once.
const treeParallel = 8

type treeImporter struct {
	sem    chan struct{} // a slot per small file being imported, across all folders
	opts   TreeOptions
	put    func(Block) error
	files  atomic.Uint64
	size   atomic.Uint64
	read   atomic.Int64 // bytes read, for Progress
	blocks atomic.Int64
}

func (t *treeImporter) countingPut(b Block) error {
	t.blocks.Add(1)
	if t.put == nil {
		return nil
	}
	return t.put(b)
}

// dir imports a directory and everything under it.
func (t *treeImporter) dir(parent context.Context, path string, depth int) (DirEntry, error) {
	if depth > maxTreeDepth {
		return DirEntry{}, fmt.Errorf("%s: more than %d directories deep", path, maxTreeDepth)
	}
	des, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return DirEntry{}, err
	}
	// Files are opened through the folder's own handle: one name looked up per file, not the
	// whole path from the root of the file system.
	root, err := os.OpenRoot(path)
	if err != nil {
		return DirEntry{}, err
	}
	defer root.Close()
	entries := make([]DirEntry, 0, len(des))
	// Regular files found larger than a chunk by the goroutine that opened them are imported
	// after the small ones, one at a time, each hashed on opts.Workers goroutines.
	type largeFile struct {
		slot *DirEntry
		path string
	}
	var largeMu sync.Mutex
	var large []largeFile
	// Small files are imported on up to treeParallel goroutines, each into
	// its own slot of entries; the rest here, in order.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	chunk := t.opts.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	for _, de := range des {
		if ctx.Err() != nil {
			break
		}
		name := de.Name()
		if !t.opts.Hidden && strings.HasPrefix(name, ".") {
			continue
		}
		if err := CheckName(name); err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
			break
		}
		p := filepath.Join(path, name)
		entries = append(entries, DirEntry{Name: name})
		slot := &entries[len(entries)-1] // entries never grows past its capacity
		if de.IsDir() {
			e, err := t.dir(ctx, p, depth+1)
			if err != nil {
				fail(err)
				break
			}
			slot.Cid, slot.Tsize = e.Cid, e.Tsize
			continue
		}
		if !de.Type().IsRegular() { // a symbolic link, or a special file (refused)
			info, err := de.Info()
			if err == nil {
				var e DirEntry
				if e, err = t.entry(ctx, p, info, t.opts.Workers); err == nil {
					slot.Cid, slot.Tsize = e.Cid, e.Tsize
				}
			}
			if err != nil {
				fail(err)
				break
			}
			continue
		}
		select {
		case t.sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-t.sem }()
			e, ok, err := t.smallIn(root, name, p)
			switch {
			case err != nil:
				fail(err)
			case ok:
				slot.Cid, slot.Tsize = e.Cid, e.Tsize
			default:
				largeMu.Lock()
				large = append(large, largeFile{slot, p})
				largeMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return DirEntry{}, firstErr
	}
	for _, l := range large {
		info, err := os.Lstat(l.path)
		var e DirEntry
		if err == nil {
			e, err = t.entry(ctx, l.path, info, t.opts.Workers)
		}
		if err != nil {
			return DirEntry{}, err
		}
		l.slot.Cid, l.slot.Tsize = e.Cid, e.Tsize
	}
	if err := parent.Err(); err != nil {
		return DirEntry{}, err
	}
	res, err := BuildDirectory(entries, t.countingPut)
	if err != nil {
		return DirEntry{}, fmt.Errorf("%s: %w", path, err)
	}
	return DirEntry{Cid: res.Root, Tsize: res.Tsize}, nil
}

// entry imports a file (hashed on workers goroutines) or a symbolic link.
func (t *treeImporter) entry(ctx context.Context, path string, info fs.FileInfo, workers int) (DirEntry, error) {
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return DirEntry{}, err
		}
		c, size, err := SymlinkNode(target, t.countingPut)
		if err != nil {
			return DirEntry{}, fmt.Errorf("%s: %w", path, err)
		}
		return DirEntry{Cid: c, Tsize: size}, nil
	case info.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return DirEntry{}, err
		}
		defer f.Close()
		if e, ok, err := t.small(f, path, info); ok || err != nil {
			return e, err
		}
		opts := t.opts.ImportOptions
		opts.Workers = workers
		if progress := opts.Progress; progress != nil {
			var last int64
			opts.Progress = func(n int64) {
				progress(t.read.Add(n - last))
				last = n
			}
		}
		res, err := Import(ctx, f, opts, t.countingPut)
		if err != nil {
			return DirEntry{}, fmt.Errorf("%s: %w", path, err)
		}
		t.files.Add(1)
		t.size.Add(res.Size)
		if t.opts.FileDone != nil {
			t.opts.FileDone(path, res.Size)
		}
		return DirEntry{Cid: res.Root, Tsize: res.Tsize}, nil
	}
	return DirEntry{}, fmt.Errorf("%s is not a regular file, directory or symbolic link", path)
}

// smallIn imports the regular file name of the folder root (path names it for messages) if it
// holds at most one chunk; ok is false, and nothing imported, when it holds more.
func (t *treeImporter) smallIn(root *os.Root, name, path string) (_ DirEntry, ok bool, _ error) {
	f, err := root.Open(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = path
		}
		return DirEntry{}, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return DirEntry{}, false, err
	}
	if !info.Mode().IsRegular() { // replaced since the folder was listed
		return DirEntry{}, false, fmt.Errorf("%s is not a regular file, directory or symbolic link", path)
	}
	return t.small(f, path, info)
}

// small imports a file of at most one chunk as the one raw leaf Import makes of it, read in one
// call and hashed here: most of a folder of small files, for which Import's pipeline of
// goroutines would cost more than the hashing. ok is false, with f at its start, when the file
// turns out larger than a chunk (it grew since it was listed).
func (t *treeImporter) small(f *os.File, path string, info fs.FileInfo) (_ DirEntry, ok bool, _ error) {
	chunk := t.opts.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	if info.Size() > int64(chunk) {
		return DirEntry{}, false, nil
	}
	bp := getSmallBuf(int(info.Size()) + 1) // one byte more tells a file that grew
	defer putSmallBuf(bp)
	buf := *bp
	// One read returns a regular file's bytes up to the end: the size it was listed with means
	// the whole file (a file that grew fills the byte more). Anything else reads on to the end.
	n, err := f.Read(buf)
	if n != int(info.Size()) || err != nil && !errors.Is(err, io.EOF) {
		var m int
		m, err = io.ReadFull(f, buf[n:])
		n += m
		switch {
		case err == nil:
			_, err := f.Seek(0, io.SeekStart)
			return DirEntry{}, false, err
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		default:
			return DirEntry{}, false, err
		}
	}
	data := buf[:n]
	c, err := cidFromSHA256(cid.Raw, sha256.Sum256(data))
	if err != nil {
		return DirEntry{}, false, err
	}
	if err := t.countingPut(Block{Cid: c, Data: data, Leaf: true}); err != nil {
		return DirEntry{}, false, err
	}
	if progress := t.opts.Progress; progress != nil {
		progress(t.read.Add(int64(n)))
	}
	t.files.Add(1)
	t.size.Add(uint64(n))
	if t.opts.FileDone != nil {
		t.opts.FileDone(path, uint64(n))
	}
	return DirEntry{Cid: c, Tsize: uint64(n)}, true, nil
}

// smallBufs pools the buffers small files are read into, by size class (powers of two from 4 KiB
// up to the largest chunk), so a folder of small files allocates none per file.
var smallBufs [bits.UintSize]sync.Pool

func smallClass(n int) int { return max(bits.Len(uint(n-1)), 12) }

func getSmallBuf(n int) *[]byte {
	c := smallClass(n)
	if bp, ok := smallBufs[c].Get().(*[]byte); ok {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<c)
	return &b
}

func putSmallBuf(bp *[]byte) { smallBufs[smallClass(cap(*bp))].Put(bp) }
