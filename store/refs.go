package store

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// Referenced files are served from where they lie, as BitTorrent serves from the files themselves:
// the repo owns only their inner DAG nodes, and refs maps each leaf to its byte ranges. The map is
// derived state, rebuilt from the index by walking inner nodes (one per GiB of data) the first
// time a block is looked up, and kept current by applyRefs as events are recorded.

// refsFor returns where referenced copies of leaf c live.
func (s *Store) refsFor(c cid.Cid) []refLoc {
	if c.Prefix().Codec != cid.Raw {
		return nil
	}
	s.mu.Lock()
	if s.refs == nil {
		s.refs = map[string][]refLoc{}
		files := s.ix.files()
		s.mu.Unlock()
		for _, f := range files {
			if f.Path != "" && f.State == Complete {
				s.indexRefs(f)
			}
		}
		s.mu.Lock()
	}
	locs := append([]refLoc(nil), s.refs[blockKey(c)]...)
	s.mu.Unlock()
	return locs
}

// indexRefs adds f's leaves to the map. A file whose size or modification time differs from what
// was hashed is recorded as changed and not served.
func (s *Store) indexRefs(f File) {
	path := f.Path
	if st, err := os.Stat(path); err != nil || uint64(st.Size()) != f.Size || st.ModTime().UnixNano() != f.ModTime {
		reason := "size or modification time changed"
		if err != nil {
			reason = err.Error()
		}
		s.markChanged(f.CID, f.Path, reason)
		return
	}
	locs := map[string][]refLoc{}
	err := s.walk(context.Background(), f.Root, f.Size, func(c cid.Cid, n unixfs.Node, off uint64) error {
		if c.Prefix().Codec == cid.Raw {
			k := blockKey(c)
			locs[k] = append(locs[k], refLoc{root: f.CID, path: path, offset: off, size: n.Size})
		}
		return nil
	})
	if err != nil {
		log.Warn("cannot index referenced file", "cid", f.CID, "path", f.Path, "err", err)
	}
	s.mu.Lock()
	if s.refs != nil {
		for k, l := range locs {
			s.refs[k] = append(s.refs[k], l...)
		}
	}
	s.mu.Unlock()
}

// applyRefs keeps the map current as events are recorded. Called with s.mu held.
func (s *Store) applyRefs(e Event) {
	if s.refs == nil {
		return
	}
	switch e.Type {
	case FileRemoved, FileChanged, FetchCompleted, FileAdded:
		for k, locs := range s.refs {
			kept := locs[:0]
			for _, l := range locs {
				if l.root != e.Root {
					kept = append(kept, l)
				}
			}
			if len(kept) == 0 {
				delete(s.refs, k)
			} else {
				s.refs[k] = kept
			}
		}
	}
	if (e.Type == FileAdded || e.Type == FetchCompleted) && e.Path != "" {
		s.refs = nil // rebuilt on next use, including the new file
	}
}

// readRefUnverified reads a referenced leaf for serving, after checking that the file is the
// version that was hashed (same size and modification time).
func (s *Store) readRefUnverified(loc refLoc) ([]byte, error) {
	f, ok := s.fileByCID(loc.root)
	if !ok || f.State != Complete {
		return nil, ErrNotFound
	}
	fh, err := os.Open(loc.path)
	if err != nil {
		s.refFailed(loc, err)
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if uint64(st.Size()) != f.Size || st.ModTime().UnixNano() != f.ModTime {
		s.markChanged(f.CID, f.Path, "size or modification time changed")
		return nil, ErrNotFound
	}
	return readAt(fh, loc)
}

// refFailed handles a referenced leaf that could not be read or verified.
func (s *Store) refFailed(loc refLoc, err error) {
	f, ok := s.fileByCID(loc.root)
	if !ok || f.State != Complete {
		return // a partial download's holes are expected
	}
	if errors.Is(err, unixfs.ErrHashMismatch) || errors.Is(err, fs.ErrNotExist) {
		s.markChanged(loc.root, loc.path, err.Error())
	}
}

func (s *Store) fileByCID(root string) (File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.ix.Files[root]
	if !ok {
		return File{}, false
	}
	return *f, true
}

func (s *Store) markChanged(root, path, reason string) {
	log.Warn("referenced file changed; no longer served", "cid", root, "path", path, "reason", reason)
	if err := s.Record(Event{Type: FileChanged, Root: root, Path: path, Error: reason}); err != nil {
		log.Warn("recording change", "err", err)
	}
}

// PartPath is where a download into path is written until it is complete.
func PartPath(path string) string { return path + ".part" }
