package unixfs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Sizes and limits of the DAGs this package makes and reads.
const (
	DefaultChunkSize = 1 << 20
	MinChunkSize     = 256
	MaxChunkSize     = 1 << 20
	MaxLinks         = 1024
	MaxBlockSize     = 2 << 20 // largest block any decoder accepts
	// MaxDepth bounds the depth of the DAGs a reader walks and a fetch
	// unfolds: inner nodes at most MaxDepth links below the root (raw leaves
	// one more). A balanced DAG of 1024 links per node needs 7 levels for
	// 2^64 bytes.
	MaxDepth = 64
)

var (
	// ErrHashMismatch is returned (wrapped, naming the CID) by Verify.
	ErrHashMismatch = errors.New("block does not match its CID")
	// ErrNotFile is returned (wrapped) by ParseNode for a valid UnixFS node
	// that is not part of a file, such as a directory.
	ErrNotFile = errors.New("not a file")
)

// Child is one child of a file node.
type Child struct {
	Cid    cid.Cid
	Offset uint64 // offset of the child's file bytes within this node
	Size   uint64 // file bytes under the child
}

// Node is one parsed block of a file DAG: what readers and fetchers need to
// walk it.
type Node struct {
	Cid      cid.Cid
	Size     uint64  // file bytes under this node
	Children []Child // empty for a leaf
	// Data is the file bytes held in the block itself: a raw leaf's bytes, or
	// a dag-pb node's UnixFS Data, which come before any children's bytes.
	// It is nil for inner nodes made by Import. It aliases the parsed block.
	Data []byte
}

// ParseNode decodes a raw (0x55) or dag-pb (0x70) UnixFS file block, CIDv0 or
// CIDv1, with raw or dag-pb leaves. It checks that the node is consistent: as
// many links as blocksizes, at most MaxLinks links, blocksizes plus inline data
// adding up to filesize, child CIDs this package can read, type File or Raw.
// Other UnixFS types give an error wrapping ErrNotFile. It does not hash.
func ParseNode(c cid.Cid, block []byte) (Node, error) {
	if len(block) > MaxBlockSize {
		return Node{}, fmt.Errorf("block %s: %d bytes exceeds the limit of %d", c, len(block), MaxBlockSize)
	}
	switch c.Type() {
	case cid.Raw:
		return Node{Cid: c, Size: uint64(len(block)), Data: block}, nil
	case cid.DagProtobuf:
	default:
		return Node{}, fmt.Errorf("block %s: codec 0x%x is not raw or dag-pb", c, c.Type())
	}
	nlinks, data, err := scanPB(block)
	if err != nil {
		return Node{}, fmt.Errorf("block %s: dag-pb: %w", c, err)
	}
	if data == nil {
		return Node{}, fmt.Errorf("block %s: dag-pb node has no UnixFS data", c)
	}
	fs, err := DecodeFSData(data)
	if err != nil {
		return Node{}, fmt.Errorf("block %s: %w", c, err)
	}
	if fs.Type != File && fs.Type != Raw {
		return Node{}, fmt.Errorf("block %s is a UnixFS %s: %w", c, fs.Type, ErrNotFile)
	}
	if nlinks > MaxLinks {
		return Node{}, fmt.Errorf("block %s: %d links exceeds the limit of %d", c, nlinks, MaxLinks)
	}
	if nlinks != len(fs.BlockSizes) {
		return Node{}, fmt.Errorf("block %s: %d links but %d blocksizes", c, nlinks, len(fs.BlockSizes))
	}
	n := Node{Cid: c, Data: fs.Data}
	size := uint64(len(fs.Data))
	if nlinks > 0 {
		n.Children = make([]Child, nlinks)
	}
	err = eachLink(block, func(i int, l Link) error {
		if err := CheckCID(l.Cid); err != nil {
			return fmt.Errorf("link %d: %w", i, err)
		}
		bs := fs.BlockSizes[i]
		n.Children[i] = Child{Cid: l.Cid, Offset: size, Size: bs}
		var carry uint64
		size, carry = bits.Add64(size, bs, 0)
		if carry != 0 {
			return errors.New("blocksizes overflow")
		}
		return nil
	})
	if err != nil {
		return Node{}, fmt.Errorf("block %s: %w", c, err)
	}
	if fs.HasFileSize && fs.FileSize != size {
		return Node{}, fmt.Errorf("block %s: filesize %d but data and blocksizes add up to %d", c, fs.FileSize, size)
	}
	n.Size = size
	return n, nil
}

// Verify hashes block with c's multihash function and compares the digest
// with c's. A difference gives an error wrapping ErrHashMismatch that names
// the CID. sha2-256 takes a fast path; other functions go through
// go-multihash.
func Verify(c cid.Cid, block []byte) error {
	if !c.Defined() {
		return errors.New("verify: undefined CID")
	}
	p := c.Prefix()
	if p.MhType == mh.SHA2_256 && p.MhLength == sha256.Size {
		sum := sha256.Sum256(block)
		k := c.KeyString()
		if len(k) < sha256.Size || k[len(k)-sha256.Size:] != string(sum[:]) {
			return fmt.Errorf("%w: %s", ErrHashMismatch, c)
		}
		return nil
	}
	length := p.MhLength
	if p.MhType == mh.IDENTITY {
		length = -1
	}
	h, err := mh.Sum(block, p.MhType, length)
	if err != nil {
		return fmt.Errorf("verify %s: %w", c, err)
	}
	if !bytes.Equal(h, c.Hash()) {
		return fmt.Errorf("%w: %s", ErrHashMismatch, c)
	}
	return nil
}

// ErrBadCID is wrapped by ParseCID's errors.
var ErrBadCID = errors.New("not a valid CID")

// ParseCID decodes s and checks it with CheckCID. Its error is one line that quotes s and says
// what is wrong once (go-cid nests its "invalid cid: " prefix).
func ParseCID(s string) (cid.Cid, error) {
	c, err := DecodeCID(s)
	if err != nil {
		return cid.Undef, err
	}
	if err := CheckCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// DecodeCID decodes s as a CID of any codec and hash function, with ParseCID's one-line errors.
func DecodeCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		msg := err.Error()
		for {
			rest, ok := strings.CutPrefix(msg, "invalid cid: ")
			if !ok {
				break
			}
			msg = rest
		}
		return cid.Undef, fmt.Errorf("%q is %w: %s", s, ErrBadCID, msg)
	}
	return c, nil
}

// CheckCID tells whether c is a CID this package can fetch and read: version
// 0 or 1, codec raw or dag-pb, and a sha2-256 multihash of 32 bytes.
func CheckCID(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("undefined CID")
	}
	p := c.Prefix()
	if p.Version > 1 {
		return fmt.Errorf("CID %s: version %d is not supported", c, p.Version)
	}
	if p.Codec != cid.Raw && p.Codec != cid.DagProtobuf {
		return fmt.Errorf("CID %s: codec 0x%x is not supported (only raw 0x55 and dag-pb 0x70)", c, p.Codec)
	}
	if p.MhType != mh.SHA2_256 {
		name := mh.Codes[p.MhType]
		if name == "" {
			name = fmt.Sprintf("0x%x", p.MhType)
		}
		return fmt.Errorf("CID %s: hash function %s is not supported (only sha2-256)", c, name)
	}
	if p.MhLength != sha256.Size {
		return fmt.Errorf("CID %s: sha2-256 digest of %d bytes, want 32", c, p.MhLength)
	}
	return nil
}
