package unixfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"
)

// TreeOptions tune ImportTree.
type TreeOptions struct {
	ImportOptions
	// Hidden includes entries whose names start with '.', which are skipped
	// otherwise (as `ipfs add -r` skips them without --hidden).
	Hidden bool
	// ImportOptions.Progress, if not nil, is called with the bytes of all
	// files read so far.
	//
	// FileDone, if not nil, is called after each file is imported, with its
	// path and size. It must not block.
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
// everything under it, the root last. Only one file is read at a time, and
// only the entries of the directories on the current path are held.
func ImportTree(ctx context.Context, path string, opts TreeOptions, put func(Block) error) (TreeResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return TreeResult{}, err
	}
	t := &treeImporter{ctx: ctx, opts: opts, put: put}
	var e DirEntry
	if st.IsDir() {
		e, err = t.dir(path, 0)
	} else {
		e, err = t.entry(path, st)
	}
	if err != nil {
		return TreeResult{}, err
	}
	return TreeResult{Root: e.Cid, Dir: st.IsDir(), Files: t.files, Size: t.size, Blocks: t.blocks}, nil
}

// maxTreeDepth bounds how deep ImportTree descends, against directory loops
// made with bind mounts.
const maxTreeDepth = 1024

type treeImporter struct {
	ctx    context.Context
	opts   TreeOptions
	put    func(Block) error
	files  uint64
	size   uint64
	blocks int
}

func (t *treeImporter) countingPut(b Block) error {
	t.blocks++
	if t.put == nil {
		return nil
	}
	return t.put(b)
}

// dir imports a directory and everything under it.
func (t *treeImporter) dir(path string, depth int) (DirEntry, error) {
	if depth > maxTreeDepth {
		return DirEntry{}, fmt.Errorf("%s: more than %d directories deep", path, maxTreeDepth)
	}
	des, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return DirEntry{}, err
	}
	var entries []DirEntry
	for _, de := range des {
		if err := t.ctx.Err(); err != nil {
			return DirEntry{}, err
		}
		name := de.Name()
		if !t.opts.Hidden && strings.HasPrefix(name, ".") {
			continue
		}
		if err := CheckName(name); err != nil {
			return DirEntry{}, fmt.Errorf("%s: %w", path, err)
		}
		p := filepath.Join(path, name)
		var e DirEntry
		if de.IsDir() {
			e, err = t.dir(p, depth+1)
		} else {
			var info fs.FileInfo
			if info, err = de.Info(); err == nil {
				e, err = t.entry(p, info)
			}
		}
		if err != nil {
			return DirEntry{}, err
		}
		e.Name = name
		entries = append(entries, e)
	}
	res, err := BuildDirectory(entries, t.countingPut)
	if err != nil {
		return DirEntry{}, fmt.Errorf("%s: %w", path, err)
	}
	return DirEntry{Cid: res.Root, Tsize: res.Tsize}, nil
}

// entry imports a file or a symbolic link.
func (t *treeImporter) entry(path string, info fs.FileInfo) (DirEntry, error) {
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
		opts := t.opts.ImportOptions
		if progress := opts.Progress; progress != nil {
			base := int64(t.size)
			opts.Progress = func(n int64) { progress(base + n) }
		}
		res, err := Import(t.ctx, f, opts, t.countingPut)
		if err != nil {
			return DirEntry{}, fmt.Errorf("%s: %w", path, err)
		}
		t.files++
		t.size += res.Size
		if t.opts.FileDone != nil {
			t.opts.FileDone(path, res.Size)
		}
		return DirEntry{Cid: res.Root, Tsize: res.Tsize}, nil
	}
	return DirEntry{}, fmt.Errorf("%s is not a regular file, directory or symbolic link", path)
}
