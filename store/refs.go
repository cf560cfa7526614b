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
	ready := s.refs != nil
	s.mu.Unlock()
	if !ready {
		s.buildRefs()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]refLoc(nil), s.refs[blockKey(c)]...)
}

// buildRefs derives the map from the index. Concurrent lookups wait for it rather than see a
// half-built map; a build that an event overtook (a file added or changed meanwhile) starts over.
func (s *Store) buildRefs() {
	s.refsBuild.Lock()
	defer s.refsBuild.Unlock()
	for {
		s.mu.Lock()
		if s.refs != nil {
			s.mu.Unlock()
			return
		}
		gen := s.refsGen
		files := s.ix.files()
		s.mu.Unlock()
		refs := map[string][]refLoc{}
		for _, f := range files {
			if f.Path != "" && f.State == Complete {
				for k, l := range s.fileRefs(f) {
					refs[k] = append(refs[k], l...)
				}
			}
		}
		s.mu.Lock()
		if s.refsGen == gen {
			s.refs = refs
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// fileRefs lists f's leaves and their byte ranges. A file whose size or modification time
// differs from what was hashed is recorded as changed and not served.
func (s *Store) fileRefs(f File) map[string][]refLoc {
	path := f.Path
	if !s.Intact(f) {
		return nil
	}
	if f.Dir {
		return s.folderRefs(f)
	}
	locs := map[string][]refLoc{}
	leaf := 0
	err := s.walk(context.Background(), f.Root, f.Size, func(c cid.Cid, n unixfs.Node, off uint64) error {
		if c.Prefix().Codec == cid.Raw {
			k := blockKey(c)
			locs[k] = append(locs[k], refLoc{root: f.CID, path: path, offset: off, size: n.Size, leaf: leaf})
			leaf++
		}
		return nil
	})
	if err != nil {
		logger().Warn("cannot index referenced file", "cid", f.CID, "path", f.Path, "err", err)
	}
	return locs
}

// applyRefs keeps the map current as events are recorded. Called with s.mu held.
func (s *Store) applyRefs(e Event) {
	switch e.Type {
	case FileAdded, FileRemoved, FileChanged, FetchCompleted:
		s.refs = nil // derived state: rebuilt on next use
		s.refsGen++
		s.forgetRefCheck(e.Root) // a new version or place of the file starts unverified
	}
}

// readRefServed reads referenced leaf c for serving, after checking that the file is the version
// that was hashed (same size and modification time), and verifies it unless it was verified under
// the same stat of the file. A leaf that does not match records the file as changed.
func (s *Store) readRefServed(c cid.Cid, loc refLoc, alloc func(n int) []byte) ([]byte, error) {
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
	if f.Dir {
		err = matchesInFolder(st, f, loc.fsize)
	} else {
		err = matches(st, f)
	}
	if err != nil {
		s.markChanged(f.CID, f.Path, refReason(f, loc, err.Error()))
		return nil, ErrNotFound
	}
	fst := statOf(st)
	if s.refVerified(loc, fst) {
		return readAt(fh, loc, alloc)
	}
	data, err := readAt(fh, loc, alloc)
	if err != nil {
		return nil, err
	}
	s.hashed.Add(1)
	if err := unixfs.Verify(c, data); err != nil {
		s.markChanged(f.CID, f.Path, refReason(f, loc, fmt.Sprintf("bytes at offset %d no longer match their CID", loc.offset)))
		return nil, ErrNotFound
	}
	s.refRemember(loc, fst)
	return data, nil
}

// Intact reports whether f's bytes are where the index says: always for a file whose blocks the
// repo owns; for a complete referenced file, when it still has the size and modification time
// that were hashed; for a folder shared in place, when every file in it is (folderIntact); never
// for a partial one. A referenced file that is gone or changed is recorded as changed and no
// longer served.
func (s *Store) Intact(f File) bool {
	if f.Path == "" {
		return true
	}
	if f.State != Complete {
		return false
	}
	if f.Dir {
		return s.folderIntact(f)
	}
	st, err := os.Stat(f.Path)
	if err == nil {
		err = matches(st, f)
	}
	if err != nil {
		s.markChanged(f.CID, f.Path, err.Error())
		return false
	}
	return true
}

// errChanged says a referenced file is no longer the version that was hashed.
var errChanged = errors.New("size or modification time changed")

func matches(st fs.FileInfo, f File) error {
	if uint64(st.Size()) != f.Size || st.ModTime().UnixNano() != f.ModTime {
		return errChanged
	}
	return nil
}

// refFailed handles a referenced leaf that could not be read or verified.
func (s *Store) refFailed(loc refLoc, err error) {
	f, ok := s.fileByCID(loc.root)
	if !ok || f.State != Complete {
		return // a partial download's holes are expected
	}
	if errors.Is(err, unixfs.ErrHashMismatch) || errors.Is(err, fs.ErrNotExist) {
		s.markChanged(loc.root, f.Path, refReason(f, loc, err.Error()))
	}
}

// refReason names the file of a folder that changed.
func refReason(f File, loc refLoc, reason string) string {
	if f.Dir {
		return loc.path + ": " + reason
	}
	return reason
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
	logger().Warn("referenced file changed; no longer served", "cid", root, "path", path, "reason", reason)
	if err := s.Record(Event{Type: FileChanged, Root: root, Path: path, Error: reason}); err != nil {
		logger().Warn("recording change", "err", err)
	}
}

// PartPath is where a download of root into path is written until it is complete: a hidden file
// named by the CID beside path (".peer-CID.part", at most 70 bytes, so that any valid file name
// can be fetched under its own name). The FetchStarted event records it, and only a partial file
// the log knows is resumed.
func PartPath(path string, root cid.Cid) string {
	return filepath.Join(filepath.Dir(path), ".peer-"+root.String()+".part")
}

// CheckFiles looks at every complete referenced file (one stat each) and records as changed those
// that are gone or no longer have the size and modification time that were hashed. It returns how
// many it found changed. A daemon calls it periodically, so that a file edited or deleted while
// nobody asks for it stops being offered.
func (s *Store) CheckFiles() int {
	s.mu.Lock()
	files := s.ix.files()
	s.mu.Unlock()
	n := 0
	for _, f := range files {
		if f.Path != "" && f.State == Complete && !s.Intact(f) {
			n++
		}
	}
	return n
}
