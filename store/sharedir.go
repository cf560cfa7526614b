package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// A folder shared in place is one FileAdded event: its Path is the folder, its ModTime the time
// the import began, and nothing per file is recorded. The repo owns the folder's directory nodes
// and its files' inner nodes; where each file lies and how big it is follow from the DAG (the
// folder's path joined with the names on the way), so the log grows by a handful of events per
// folder whatever it holds. A file of the folder is the version that was hashed while it has the
// size its DAG says and its change time (its modification time where the system has no change
// time) is older than the import: writing to a file, truncating it, or replacing it moves its
// change time past that, and the user cannot set it back.

// refFile is one file of a folder referenced in place.
type refFile struct {
	path string
	root cid.Cid
	size uint64
}

// refFiles lists the files of the folder f, in name order, from its owned directory nodes.
// Symbolic links are owned nodes, not files, and are not listed.
func (s *Refs) refFiles(ctx context.Context, f File) ([]refFile, error) {
	var out []refFile
	get := func(_ context.Context, c cid.Cid) ([]byte, error) { return s.blocks.get(c) }
	var visit func(dir cid.Cid, path string, depth int) error
	visit = func(dir cid.Cid, path string, depth int) error {
		if depth > maxRefDepth {
			return fmt.Errorf("%s: more than %d folders deep", path, maxRefDepth)
		}
		links, err := unixfs.ListDir(ctx, dir, get)
		if err != nil {
			return err
		}
		for _, l := range links {
			p := filepath.Join(path, l.Name)
			if l.Cid.Prefix().Codec == cid.Raw {
				out = append(out, refFile{path: p, root: l.Cid, size: l.Tsize})
				continue
			}
			data, err := s.blocks.get(l.Cid)
			if err != nil {
				return err
			}
			t, size, err := unixfs.Inspect(l.Cid, data)
			if err != nil {
				return err
			}
			switch t {
			case unixfs.Directory, unixfs.HAMTShard:
				if err := visit(l.Cid, p, depth+1); err != nil {
					return err
				}
			case unixfs.File, unixfs.Raw:
				out = append(out, refFile{path: p, root: l.Cid, size: size})
			}
		}
		return nil
	}
	if err := visit(f.Root, f.Path, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// maxRefDepth bounds how deep refFiles descends; the importer refuses deeper trees.
const maxRefDepth = 1024

// errChangedSince says a file of a shared folder was written after the folder was hashed.
var errChangedSince = errors.New("changed since the folder was shared")

// matchesInFolder reports whether st is the version of a file of the shared folder f that was
// hashed: a regular file of the DAG's size, changed before the import began.
func matchesInFolder(st fs.FileInfo, f File, size uint64) error {
	if !st.Mode().IsRegular() || uint64(st.Size()) != size {
		return errChanged
	}
	t, _, _ := sysStat(st)
	if t == 0 {
		t = st.ModTime().UnixNano()
	}
	if t >= f.ModTime {
		return errChangedSince
	}
	return nil
}

// folderIntact stats every file of the shared folder f (one lstat each) and records the folder as
// changed at the first that is gone or changed.
func (s *Refs) folderIntact(f File) bool {
	files, err := s.refFiles(context.Background(), f)
	if err != nil {
		s.markChanged(f.CID, f.Path, err.Error())
		return false
	}
	for _, rf := range files {
		st, err := os.Lstat(rf.path)
		if err == nil {
			err = matchesInFolder(st, f, rf.size)
		}
		if err != nil {
			s.markChanged(f.CID, f.Path, fmt.Sprintf("%s: %v", rf.path, err))
			return false
		}
	}
	return true
}

// folderRefs lists the leaves of every file of the shared folder f and their byte ranges.
func (s *Refs) folderRefs(f File) map[string][]refLoc {
	files, err := s.refFiles(context.Background(), f)
	if err != nil {
		logger().Warn("cannot index referenced folder", "cid", f.CID, "path", f.Path, "err", err)
		return nil
	}
	locs := map[string][]refLoc{}
	for _, rf := range files {
		leaf := 0
		err := s.blocks.walk(context.Background(), rf.root, rf.size, func(c cid.Cid, n unixfs.Node, off uint64) error {
			if c.Prefix().Codec == cid.Raw {
				k := blockKey(c)
				locs[k] = append(locs[k], refLoc{root: f.CID, path: rf.path, offset: off, size: n.Size, leaf: leaf, fsize: rf.size})
				leaf++
			}
			return nil
		})
		if err != nil {
			logger().Warn("cannot index referenced file", "cid", f.CID, "path", rf.path, "err", err)
		}
	}
	return locs
}
