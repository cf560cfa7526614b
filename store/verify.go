package store

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// What is served is verified. The receiver hashes every block and bans a peer that sends one that
// does not match, so a block read from a file edited in place (even with its size and modification
// time put back) or from a rotted block file must not go out. Hashing every read would cost as
// much CPU as the receiver spends; instead each block is hashed the first time it is served under a
// given stat of its file (size, modification time, change time, inode and device where the system
// has them), and remembered until that stat changes: per referenced file, the stat and a bitmap of
// its verified leaves; for owned blocks, a bounded set of block keys and their files' stats. A stat
// younger than racyWindow is not remembered, since an edit within the same clock tick could leave
// it unchanged (git's "racy" entries): such a file is hashed on every read until it settles.

// racyWindow is how old a file's change and modification times must be before a verification made
// under its stat is remembered.
const racyWindow = 2 * time.Second

// ownedGeneration bounds the verified set of owned blocks: it keeps at most two generations of
// this many entries (about 100 bytes each), the older dropped when the newer fills.
const ownedGeneration = 1 << 15

// fileStat identifies a version of a file: what changes when its bytes may have.
type fileStat struct {
	size, mtime, ctime int64
	ino, dev           uint64
}

func statOf(fi fs.FileInfo) fileStat {
	st := fileStat{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	st.ctime, st.ino, st.dev = sysStat(fi)
	return st
}

// settled reports whether the stat is old enough at now to remember a verification made under it.
func (st fileStat) settled(now time.Time) bool {
	cut := now.Add(-racyWindow).UnixNano()
	return st.mtime < cut && st.ctime < cut
}

// refCheck is what was verified of one referenced file, under which stat.
type refCheck struct {
	stat fileStat
	bits []uint64 // leaf i verified: bit i
}

// verifiedSet is the owned blocks verified, with the stat of their files, in two generations.
type verifiedSet struct {
	cur, old map[string]fileStat
}

func (v *verifiedSet) has(k string, st fileStat) bool {
	if x, ok := v.cur[k]; ok {
		return x == st
	}
	if x, ok := v.old[k]; ok && x == st {
		v.add(k, st)
		return true
	}
	return false
}

func (v *verifiedSet) add(k string, st fileStat) {
	if v.cur == nil || len(v.cur) >= ownedGeneration {
		v.old, v.cur = v.cur, make(map[string]fileStat)
	}
	v.cur[k] = st
}

// refVerified reports whether leaf loc was verified under st; a different stat forgets what was
// verified of the file.
func (s *Refs) refVerified(loc refLoc, st fileStat) bool {
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	rc := s.refChecks[loc.root][loc.path]
	if rc == nil {
		return false
	}
	if rc.stat != st {
		rc.stat, rc.bits = st, rc.bits[:0]
		return false
	}
	w := loc.leaf / 64
	return w < len(rc.bits) && rc.bits[w]&(1<<(loc.leaf%64)) != 0
}

// refRemember records that leaf loc matched its CID under st.
func (s *Refs) refRemember(loc refLoc, st fileStat) {
	if !st.settled(s.journal.now()) {
		return
	}
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	if s.refChecks == nil {
		s.refChecks = map[string]map[string]*refCheck{}
	}
	files := s.refChecks[loc.root]
	if files == nil {
		files = map[string]*refCheck{}
		s.refChecks[loc.root] = files
	}
	rc := files[loc.path]
	if rc == nil {
		rc = &refCheck{stat: st}
		files[loc.path] = rc
	}
	if rc.stat != st {
		rc.stat, rc.bits = st, rc.bits[:0]
	}
	w := loc.leaf / 64
	for len(rc.bits) <= w {
		rc.bits = append(rc.bits, 0)
	}
	rc.bits[w] |= 1 << (loc.leaf % 64)
}

// forgetRefCheck drops what was verified of a referenced file (every file of a folder). Called with s.mu held.
func (s *Refs) forgetRefCheck(root string) {
	s.verifyMu.Lock()
	delete(s.refChecks, root)
	s.verifyMu.Unlock()
}

// serveOwned verifies an owned block read for serving unless it was verified under the same stat
// of its file. A block that does not match is moved aside (so it is no longer served, and a fetch
// of its file can bring it again) and recorded as BlockCorrupt.
func (s *Refs) serveOwned(c cid.Cid, data []byte, st fileStat) ([]byte, error) {
	k := blockKey(c)
	s.verifyMu.Lock()
	ok := s.owned.has(k, st)
	s.verifyMu.Unlock()
	if ok {
		return data, nil
	}
	s.hashed.Add(1)
	if err := unixfs.Verify(c, data); err != nil {
		return nil, s.corruptBlock(c, data, err)
	}
	if st.settled(s.journal.now()) {
		s.verifyMu.Lock()
		s.owned.add(k, st)
		s.verifyMu.Unlock()
	}
	return data, nil
}

// corruptBlock moves a block file that does not match its CID to KEY.corrupt beside it and
// records BlockCorrupt (once: a reader that finds it moved already records nothing).
func (s *Refs) corruptBlock(c cid.Cid, data []byte, cause error) error {
	err := fmt.Errorf("%w: %s at %s does not match its CID", ErrCorruptBlock, c, s.blocks.where(c))
	aside, rerr := s.blocks.quarantine(c, data)
	if rerr != nil {
		return err
	}
	logger().Warn("stored block is corrupt; moved aside and no longer served", "cid", c, "path", aside, "err", cause)
	if rerr := s.journal.Record(Event{Type: BlockCorrupt, Root: blockKey(c), Path: aside, Error: cause.Error()}); rerr != nil {
		logger().Warn("recording a corrupt block", "err", rerr)
	}
	return err
}
