package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// Referenced files are served from where they lie, as BitTorrent serves from the files themselves:
// the repo owns only their inner DAG nodes, and refs maps each leaf to its byte ranges. The map is
// derived state, rebuilt from the index by walking inner nodes (one per GiB of data) the first
// time a block is looked up, and kept current by applyRefs as events are recorded.

// Refs is what the node knows of the files it references in place and of what it serves: where
// each referenced leaf lies (refs.go), the files of folders shared in place (sharedir.go), what
// was verified under which stat (verify.go), and the set of blocks offered to peers (served.go).
// All of it is derived from the index and the blocks, and follows the journal's events (apply).
// The methods are safe for concurrent use; mu is taken after the journal's lock, never before.
type Refs struct {
	blocks    *Blocks
	journal   *Journal
	downloads *Downloads

	mu      sync.Mutex          // guards refs, refsGen and the served set's fields
	refs    map[string][]refLoc // leaf key → where referenced copies live; nil until first needed
	refsGen uint64              // counts events that invalidate refs, so a stale build is redone
	// served is the blocks offered to peers (served.go); nil until first needed.
	served    map[string]bool
	servedAdd []cid.Cid // roots added since served was built, whose blocks it still lacks
	servedGen uint64
	servedN   int // full builds of served, for tests
	// servedBuild serializes building served, as refsBuild does refs.
	servedBuild sync.Mutex
	// refsBuild serializes building refs (taken before mu, never while holding it).
	refsBuild sync.Mutex
	// verifyMu guards what serving has verified (verify.go); taken after mu, never before.
	verifyMu  sync.Mutex
	refChecks map[string]map[string]*refCheck // referenced root → file path → the stat verified under, the leaves
	owned     verifiedSet
	hashed    atomic.Int64 // blocks hashed to serve them
}

func newRefs(b *Blocks, j *Journal, d *Downloads) *Refs {
	return &Refs{blocks: b, journal: j, downloads: d}
}

// apply keeps the derived state in step with an event; the journal calls it as it applies each.
func (s *Refs) apply(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyRefs(e)
	s.applyServed(e)
}

// refsFor returns where referenced copies of leaf c live.
func (s *Refs) refsFor(c cid.Cid) []refLoc {
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
func (s *Refs) buildRefs() {
	s.refsBuild.Lock()
	defer s.refsBuild.Unlock()
	for {
		s.mu.Lock()
		if s.refs != nil {
			s.mu.Unlock()
			return
		}
		gen := s.refsGen
		s.mu.Unlock()
		files := s.journal.Files()
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
func (s *Refs) fileRefs(f File) map[string][]refLoc {
	path := f.Path
	if !s.Intact(f) {
		return nil
	}
	if f.Dir {
		return s.folderRefs(f)
	}
	locs := map[string][]refLoc{}
	leaf := 0
	err := s.blocks.walk(context.Background(), f.Root, f.Size, func(c cid.Cid, n unixfs.Node, off uint64) error {
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
func (s *Refs) applyRefs(e Event) {
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
func (s *Refs) readRefServed(c cid.Cid, loc refLoc, alloc func(n int) []byte) ([]byte, error) {
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
func (s *Refs) Intact(f File) bool {
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
func (s *Refs) refFailed(loc refLoc, err error) {
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

func (s *Refs) fileByCID(root string) (File, bool) { return s.journal.fileByCID(root) }

func (s *Refs) markChanged(root, path, reason string) {
	logger().Warn("referenced file changed; no longer served", "cid", root, "path", path, "reason", reason)
	if err := s.journal.Record(Event{Type: FileChanged, Root: root, Path: path, Error: reason}); err != nil {
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
func (s *Refs) CheckFiles() int {
	files := s.journal.Files()
	n := 0
	for _, f := range files {
		if f.Path != "" && f.State == Complete && !s.Intact(f) {
			n++
		}
	}
	return n
}
