package store

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// A pin protects a file from being forgotten. gc never reclaims the blocks of a file the node
// holds, pinned or not (fetched and added files are held until the user removes them); what a pin
// adds is that nothing removes the file by itself or by a slip: Remove refuses it (unpin it, or
// `peer rm --force`), and sharing a path again keeps a pinned old version in the index instead of
// replacing it. A pinned file therefore keeps its blocks through every gc.

// ErrPinned means the file is pinned, so it is not removed.
var ErrPinned = errors.New("file is pinned")

// Pin pins a held file (Pinned). Pinning a pinned file records nothing.
func (s *Store) Pin(root cid.Cid) (File, error) { return s.setPin(root, true) }

// Unpin lifts a file's pin (Unpinned). Unpinning a file that is not pinned records nothing.
func (s *Store) Unpin(root cid.Cid) (File, error) { return s.setPin(root, false) }

func (s *Store) setPin(root cid.Cid, pin bool) (File, error) {
	f, ok := s.File(root)
	if !ok {
		return File{}, fmt.Errorf("%w: %s", ErrUnknownFile, root)
	}
	if f.Pinned == pin {
		return f, nil
	}
	typ := Pinned
	if !pin {
		typ = Unpinned
	}
	if err := s.Record(Event{Type: typ, Root: f.CID}); err != nil {
		return File{}, err
	}
	f, _ = s.File(root)
	return f, nil
}

// errIfPinned is the error Remove gives for a pinned file.
func errIfPinned(f File) error {
	if !f.Pinned {
		return nil
	}
	return fmt.Errorf("%w: %s (unpin it first with `peer unpin %s`, or remove it with `peer rm --force`)", ErrPinned, f.CID, f.CID)
}
