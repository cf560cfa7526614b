package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// treeEntry is one entry of a folder as walkTree visits it.
type treeEntry struct {
	rel    []string // names from the root folder to the entry
	cid    cid.Cid
	kind   unixfs.DataType // File, Directory or Symlink
	size   uint64          // a file's bytes
	target string          // a symlink's target
}

// walkTree visits every entry under the folder root, held here, depth first: a folder before
// what it holds. Every folder is decoded with unixfs.ParseDir's checks (names, duplicates, the
// shape of every HAMT shard), entries come sorted by name, and folders nest at most
// unixfs.MaxPathSegments deep. Memory grows with the depth and the widest folder, not the tree.
func (s *Store) walkTree(ctx context.Context, root cid.Cid, fn func(treeEntry) error) error {
	return walkFolder(ctx, root, s.GetBlock, false, fn)
}

// walkFolder is walkTree over blocks read with get. With rawByLink, a file of one raw leaf is not
// read: its size is its link's (for a folder whose leaves are not in the repo, and which a folder
// download checked against the leaf it wrote).
func walkFolder(ctx context.Context, root cid.Cid, get unixfs.GetFunc, rawByLink bool, fn func(treeEntry) error) error {
	var visit func(dir cid.Cid, rel []string) error
	visit = func(dir cid.Cid, rel []string) error {
		if len(rel) > unixfs.MaxPathSegments {
			return fmt.Errorf("folder %s: nested more than %d folders deep", strings.Join(rel, "/"), unixfs.MaxPathSegments)
		}
		links, err := unixfs.ListDir(ctx, dir, get)
		if err != nil {
			if len(rel) > 0 {
				return fmt.Errorf("folder %s: %w", strings.Join(rel, "/"), err)
			}
			return err
		}
		for _, l := range links {
			if err := ctx.Err(); err != nil {
				return err
			}
			e := treeEntry{rel: append(rel[:len(rel):len(rel)], l.Name), cid: l.Cid}
			if rawByLink && l.Cid.Prefix().Codec == cid.Raw {
				e.kind, e.size = unixfs.File, l.Tsize
				if err := fn(e); err != nil {
					return err
				}
				continue
			}
			block, err := get(ctx, l.Cid)
			if err != nil {
				return fmt.Errorf("entry %q: %w", strings.Join(e.rel, "/"), err)
			}
			var n uint64
			e.kind, n, err = unixfs.Inspect(l.Cid, block)
			if err != nil {
				return fmt.Errorf("entry %q: %w", strings.Join(e.rel, "/"), err)
			}
			switch e.kind {
			case unixfs.File:
				e.size = n
			case unixfs.Symlink:
				if e.target, err = symlinkTarget(l.Cid, block); err != nil {
					return fmt.Errorf("entry %q: %w", strings.Join(e.rel, "/"), err)
				}
			case unixfs.Directory:
			default:
				return fmt.Errorf("entry %q: a UnixFS %s is not a file, folder or symlink", strings.Join(e.rel, "/"), e.kind)
			}
			if err := fn(e); err != nil {
				return err
			}
			if e.kind == unixfs.Directory {
				if err := visit(l.Cid, e.rel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit(root, nil)
}

// symlinkTarget decodes a Symlink node's target; an empty one or one holding NUL is an error.
func symlinkTarget(c cid.Cid, block []byte) (string, error) {
	pb, err := unixfs.DecodePB(block)
	if err != nil {
		return "", fmt.Errorf("block %s: %w", c, err)
	}
	fs, err := unixfs.DecodeFSData(pb.Data)
	if err != nil {
		return "", fmt.Errorf("block %s: %w", c, err)
	}
	t := string(fs.Data)
	if t == "" || strings.ContainsRune(t, 0) {
		return "", fmt.Errorf("symlink %s: target %q cannot be a link's", c, t)
	}
	return t, nil
}

// TreeStats counts the files under the folder root held here and their bytes, checking every
// folder as walkTree does.
func (s *Store) TreeStats(ctx context.Context, root cid.Cid) (files, size uint64, err error) {
	err = s.walkTree(ctx, root, func(e treeEntry) error {
		if e.kind == unixfs.File {
			files++
			size += e.size
		}
		return nil
	})
	return files, size, err
}
