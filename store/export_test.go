package store

import (
	"path/filepath"

	"github.com/ipfs/go-cid"
)

// ServedBuilds counts the full builds of the set of blocks served.
func (s *Store) ServedBuilds() int {
	s.refs.mu.Lock()
	defer s.refs.mu.Unlock()
	return s.refs.servedN
}

// StoredBlocks counts the distinct blocks stored in the repo at dir, in files of their own or
// packed, as a fresh open would find them.
func StoredBlocks(dir string) (int, error) {
	seen := map[string]bool{}
	err := newBlocks(filepath.Join(dir, blocksDir)).each(func(c cid.Cid) error {
		seen[blockKey(c)] = true
		return nil
	})
	return len(seen), err
}
