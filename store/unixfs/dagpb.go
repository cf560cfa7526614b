package unixfs

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Link is one link of a dag-pb node.
type Link struct {
	Cid   cid.Cid
	Name  string
	Tsize uint64 // cumulative size of the linked DAG's blocks
}

// PBNode is a decoded dag-pb block.
type PBNode struct {
	Links []Link
	Data  []byte // nil when the block has no Data field; aliases the decoded block
}

// dag-pb field tags, as the canonical encoding writes them.
const (
	tagPBNodeData  = 1<<3 | wireBytes // PBNode.Data
	tagPBNodeLinks = 2<<3 | wireBytes // PBNode.Links
	tagPBLinkHash  = 1<<3 | wireBytes // PBLink.Hash
	tagPBLinkName  = 2<<3 | wireBytes // PBLink.Name
	tagPBLinkTsize = 3<<3 | wireVarint
)

// DecodePB decodes a dag-pb block of at most MaxBlockSize bytes. It accepts only the canonical field order
// (all links, then at most one Data), rejects unknown fields, duplicate fields,
// non-minimal varints, links without a hash and hashes that are not exactly
// one CID. Link CIDs are copied; Data aliases b.
func DecodePB(b []byte) (PBNode, error) {
	if len(b) > MaxBlockSize {
		return PBNode{}, fmt.Errorf("dag-pb: %d bytes exceeds the block limit of %d", len(b), MaxBlockSize)
	}
	var node PBNode
	nlinks, data, err := scanPB(b)
	if err != nil {
		return PBNode{}, fmt.Errorf("dag-pb: %w", err)
	}
	node.Data = data
	if nlinks > 0 {
		node.Links = make([]Link, 0, nlinks)
	}
	err = eachLink(b, func(_ int, l Link) error {
		node.Links = append(node.Links, l)
		return nil
	})
	if err != nil {
		return PBNode{}, err
	}
	return node, nil
}

// eachLink decodes the links of a node that scanPB accepted, in order.
func eachLink(b []byte, fn func(i int, l Link) error) error {
	n := 0
	for i := 0; i < len(b); {
		field, _, tn, _ := readTag(b[i:]) // validated by scanPB
		i += tn
		v, vn, _ := readBytes(b[i:])
		i += vn
		if field != 2 {
			continue
		}
		l, err := decodeLink(v)
		if err != nil {
			return fmt.Errorf("dag-pb: link %d: %w", n, err)
		}
		if err := fn(n, l); err != nil {
			return err
		}
		n++
	}
	return nil
}

// scanPB checks the outer structure of a dag-pb node, counts its links and
// finds its Data (nil if absent).
func scanPB(b []byte) (nlinks int, data []byte, err error) {
	haveData := false
	for i := 0; i < len(b); {
		field, wire, n, err := readTag(b[i:])
		if err != nil {
			return 0, nil, fmt.Errorf("reading field tag at byte %d: %w", i, err)
		}
		i += n
		if field != 1 && field != 2 {
			return 0, nil, fmt.Errorf("unknown PBNode field %d", field)
		}
		if wire != wireBytes {
			return 0, nil, fmt.Errorf("PBNode field %d has wire type %d, want 2", field, wire)
		}
		v, n, err := readBytes(b[i:])
		if err != nil {
			return 0, nil, fmt.Errorf("reading PBNode field %d: %w", field, err)
		}
		i += n
		if haveData {
			if field == 1 {
				return 0, nil, errors.New("duplicate Data field")
			}
			return 0, nil, errors.New("link after Data field")
		}
		if field == 1 {
			haveData, data = true, v
		} else {
			nlinks++
		}
	}
	return nlinks, data, nil
}

func decodeLink(b []byte) (Link, error) {
	var l Link
	var haveHash, haveName, haveTsize bool
	for i := 0; i < len(b); {
		field, wire, n, err := readTag(b[i:])
		if err != nil {
			return Link{}, fmt.Errorf("reading field tag: %w", err)
		}
		i += n
		switch field {
		case 1:
			if haveHash || haveName || haveTsize {
				return Link{}, errors.New("field Hash duplicated or out of order")
			}
			if wire != wireBytes {
				return Link{}, fmt.Errorf("field Hash has wire type %d, want 2", wire)
			}
			v, n, err := readBytes(b[i:])
			if err != nil {
				return Link{}, fmt.Errorf("reading Hash: %w", err)
			}
			i += n
			cn, c, err := cid.CidFromBytes(v)
			if err != nil {
				return Link{}, fmt.Errorf("field Hash is not a CID: %w", err)
			}
			if cn != len(v) {
				return Link{}, fmt.Errorf("field Hash has %d bytes after its CID", len(v)-cn)
			}
			l.Cid = c
			haveHash = true
		case 2:
			if !haveHash || haveName || haveTsize {
				return Link{}, errors.New("field Name duplicated or out of order")
			}
			if wire != wireBytes {
				return Link{}, fmt.Errorf("field Name has wire type %d, want 2", wire)
			}
			v, n, err := readBytes(b[i:])
			if err != nil {
				return Link{}, fmt.Errorf("reading Name: %w", err)
			}
			i += n
			if len(v) > 0 {
				l.Name = string(v)
			}
			haveName = true
		case 3:
			if !haveHash || haveTsize {
				return Link{}, errors.New("field Tsize duplicated or out of order")
			}
			if wire != wireVarint {
				return Link{}, fmt.Errorf("field Tsize has wire type %d, want 0", wire)
			}
			v, n, err := readUvarint(b[i:])
			if err != nil {
				return Link{}, fmt.Errorf("reading Tsize: %w", err)
			}
			i += n
			l.Tsize = v
			haveTsize = true
		default:
			return Link{}, fmt.Errorf("unknown PBLink field %d", field)
		}
	}
	if !haveHash {
		return Link{}, errors.New("link has no Hash")
	}
	return l, nil
}

// EncodePB encodes n in canonical dag-pb form: every link (Hash, Name, Tsize,
// with Name and Tsize always present) in order, then Data if it is not nil.
func EncodePB(n PBNode) []byte {
	size := 0
	for _, l := range n.Links {
		ll := linkLen(l.Cid, l.Name, l.Tsize)
		size += 1 + uvarintLen(uint64(ll)) + ll
	}
	if n.Data != nil {
		size += 1 + uvarintLen(uint64(len(n.Data))) + len(n.Data)
	}
	b := make([]byte, 0, size)
	for _, l := range n.Links {
		b = appendLink(b, l.Cid, l.Name, l.Tsize)
	}
	if n.Data != nil {
		b = appendPBData(b, n.Data)
	}
	return b
}

// linkLen is the encoded length of a PBLink's body.
func linkLen(c cid.Cid, name string, tsize uint64) int {
	cl := c.ByteLen()
	return 1 + uvarintLen(uint64(cl)) + cl +
		1 + uvarintLen(uint64(len(name))) + len(name) +
		1 + uvarintLen(tsize)
}

// appendLink appends one PBNode.Links entry.
func appendLink(b []byte, c cid.Cid, name string, tsize uint64) []byte {
	b = append(b, tagPBNodeLinks)
	b = appendUvarint(b, uint64(linkLen(c, name, tsize)))
	k := c.KeyString()
	b = append(b, tagPBLinkHash)
	b = appendUvarint(b, uint64(len(k)))
	b = append(b, k...)
	b = append(b, tagPBLinkName)
	b = appendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = append(b, tagPBLinkTsize)
	return appendUvarint(b, tsize)
}

// appendPBData appends the PBNode.Data field.
func appendPBData(b, data []byte) []byte {
	b = append(b, tagPBNodeData)
	b = appendUvarint(b, uint64(len(data)))
	return append(b, data...)
}
