package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// What the node serves to peers is what it holds, not whatever blocks/ contains: a file that was
// removed (its blocks wait for gc) or that changed under us is no longer offered, block by block,
// at once. served is the set of blocks reachable from a held file (complete or partial) that has
// not changed: derived state, rebuilt from the index by walking inner nodes the first time a
// block is served after an event that changes it. A block shared by two files stays in the set
// while either is held. Blocks a download in progress has learnt of are served too: they are
// named by no event yet.

// servable reports whether the node offers block c to peers.
func (s *Refs) servable(c cid.Cid) bool {
	k := blockKey(c)
	s.mu.Lock()
	s.ensureServedLocked()
	defer s.mu.Unlock()
	return s.served[k] || s.downloads.knows(k)
}

// ensureServedLocked builds the set if an event dropped it. Called with s.mu held, which it
// releases while building.
func (s *Refs) ensureServedLocked() {
	for s.served == nil || len(s.servedAdd) > 0 {
		s.mu.Unlock()
		s.buildServed()
		s.mu.Lock()
	}
}

// buildServed derives the set from the index. Like buildRefs, a build that an event overtook
// starts over, and concurrent lookups wait for it.
func (s *Refs) buildServed() {
	s.servedBuild.Lock()
	defer s.servedBuild.Unlock()
	for {
		s.mu.Lock()
		if s.served != nil {
			s.mu.Unlock()
			s.addServed()
			return
		}
		gen := s.servedGen
		s.mu.Unlock()
		files := s.journal.Files()
		live := map[string]bool{}
		for _, f := range files {
			if f.State == Changed || f.Path != "" && f.State == Complete && !s.Intact(f) {
				continue
			}
			// Not strict: a partial file's missing blocks are passed over.
			_ = s.blocks.markLive(context.Background(), f.Root, live, false)
		}
		s.mu.Lock()
		if s.servedGen == gen {
			s.served = live
			s.servedN++
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// addServed adds to the set the blocks of the files added since it was built, walking only
// those files: a node that adds files one by one while it serves does not rebuild the whole set
// for each. Called with servedBuild held.
func (s *Refs) addServed() {
	s.mu.Lock()
	roots, gen := s.servedAdd, s.servedGen
	s.servedAdd = nil
	s.mu.Unlock()
	if len(roots) == 0 {
		return
	}
	live := map[string]bool{}
	for _, r := range roots {
		_ = s.blocks.markLive(context.Background(), r, live, false)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served == nil || s.servedGen != gen {
		return // dropped meanwhile: the next build walks every file anyway
	}
	for k := range live {
		s.served[k] = true
	}
}

// applyServed keeps the set in step with an event. A file added, fetched, or left partial by a
// fetch that stopped adds its blocks (walked when next needed); a file removed or changed drops
// the set, which is rebuilt when next needed. A fetch in progress needs nothing: its blocks are
// looked up in the download. Called with s.mu held.
func (s *Refs) applyServed(e Event) {
	switch e.Type {
	case FileAdded, FetchCompleted, FetchFailed:
		if s.served != nil {
			if c, err := cid.Decode(e.Root); err == nil {
				s.servedAdd = append(s.servedAdd, c)
			}
		}
	case FileRemoved, FileChanged:
		s.served, s.servedAdd = nil, nil
		s.servedGen++
	}
}

// servedKeys lists the keys of the blocks offered, built if need be.
func (s *Refs) servedKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureServedLocked()
	keys := make([]string, 0, len(s.served))
	for k := range s.served {
		keys = append(keys, k)
	}
	return keys
}

// knows reports whether the download has learnt of block k (its root, or a child of a block it
// expanded).
func (d *Download) knows(k string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.offsets[k]
	return ok || d.tree != nil && d.tree.knowsLocked(k)
}

// ServeHas reports whether ServeBlock would serve c: the block is offered and here (a referenced
// leaf is not read to answer).
func (s *Store) ServeHas(c cid.Cid) bool {
	return s.refs.servable(c) && s.HasBlock(context.Background(), c)
}

// ServeSize is the size of the block ServeBlock would serve for c, found without reading it:
// ErrNotFound when the block is not offered or not here.
func (s *Store) ServeSize(c cid.Cid) (int, error) {
	if !s.refs.servable(c) {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if n, err := s.blocks.size(c); !errors.Is(err, ErrNotFound) {
		return n, err
	}
	if locs := s.refs.refsFor(c); len(locs) > 0 {
		return int(locs[0].size), nil
	}
	return 0, fmt.Errorf("%w: %s", ErrNotFound, c)
}

// Served lists the blocks the node offers to peers and has here, in no particular order.
func (s *Store) Served() []cid.Cid {
	keys := s.refs.servedKeys()
	out := make([]cid.Cid, 0, len(keys))
	for _, k := range keys {
		c, err := cid.Decode(k)
		if err == nil && s.HasBlock(context.Background(), c) {
			out = append(out, c)
		}
	}
	return out
}
