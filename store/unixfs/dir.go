package unixfs

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spaolacci/murmur3"
)

// Directory layout under the unixfs-v1-2025 profile.
const (
	// HAMTShardingSize is the block size above which a directory is sharded:
	// a directory whose plain node would encode to more bytes than this
	// becomes a HAMT. A node of exactly this size stays plain.
	HAMTShardingSize = 256 << 10
	// HAMTFanout is the number of slots of every HAMT shard node.
	HAMTFanout = 256
	// HashMurmur3 is the multicodec of murmur3-x64-64, the HAMT name hash.
	HashMurmur3 = 0x22
	// MaxNameLen is the longest entry name accepted, in bytes.
	MaxNameLen = 255
)

// hamtPad is the width of a shard link's hexadecimal slot prefix: the
// digits of HAMTFanout-1.
const hamtPad = 2

// maxHAMTDepth bounds the shard levels under a HAMT root: the 64-bit name
// hash gives 8 levels of 8 bits.
const maxHAMTDepth = 64 / 8

// DirEntry is one entry of a directory being built: a child's name, root CID
// and cumulative size (the dag-pb Tsize of the link to it).
type DirEntry struct {
	Name  string
	Cid   cid.Cid
	Tsize uint64
}

// DirResult is a built directory node.
type DirResult struct {
	Root    cid.Cid
	Tsize   uint64 // the root block's size plus every entry's Tsize, and any shards'
	Blocks  int    // blocks passed to put
	Sharded bool   // the directory is a HAMT
}

// BuildDirectory emits the UnixFS directory node holding entries, exactly as
// boxo's directory builder makes it under the unixfs-v1-2025 profile: links
// sorted by name bytewise in one Directory node, or a HAMTShard tree (fanout
// 256, murmur3-x64-64 of the name) when the plain node would encode to more
// than HAMTShardingSize bytes. Shard nodes are passed to put before the nodes
// linking them, the root last. Entries is sorted in place; names must pass
// CheckName and be unique.
func BuildDirectory(entries []DirEntry, put func(Block) error) (DirResult, error) {
	slices.SortFunc(entries, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	for i, e := range entries {
		if err := CheckName(e.Name); err != nil {
			return DirResult{}, err
		}
		if i > 0 && entries[i-1].Name == e.Name {
			return DirResult{}, fmt.Errorf("entry %q: duplicate name", e.Name)
		}
	}
	est := dirDataLen // the PBNode Data field: Type Directory
	for _, e := range entries {
		ll := linkLen(e.Cid, e.Name, e.Tsize)
		est += 1 + uvarintLen(uint64(ll)) + ll
	}
	var res DirResult
	if est <= HAMTShardingSize {
		buf := make([]byte, 0, est)
		var tsize uint64
		for _, e := range entries {
			buf = appendLink(buf, e.Cid, e.Name, e.Tsize)
			tsize += e.Tsize
		}
		buf = appendPBData(buf, dirData)
		c, err := emitNode(buf, put)
		if err != nil {
			return DirResult{}, err
		}
		return DirResult{Root: c, Tsize: tsize + uint64(len(buf)), Blocks: 1}, nil
	}
	hashed := make([]hashedEntry, len(entries))
	for i, e := range entries {
		hashed[i] = hashedEntry{DirEntry: e, hash: hamtHash(e.Name)}
	}
	c, tsize, err := buildShard(hashed, 0, put, &res.Blocks)
	if err != nil {
		return DirResult{}, err
	}
	res.Root, res.Tsize, res.Sharded = c, tsize, true
	return res, nil
}

// dirData is the UnixFS Data of a plain directory; dirDataLen is the size of
// the PBNode Data field carrying it.
var dirData = FSData{Type: Directory}.Encode()

var dirDataLen = 1 + uvarintLen(uint64(len(dirData))) + len(dirData)

type hashedEntry struct {
	DirEntry
	hash uint64
}

// hamtHash is the murmur3-x64-64 hash of a name as boxo reads it: the first
// 64 bits of murmur3-x64-128, big-endian, consumed from the high bits.
func hamtHash(name string) uint64 {
	return murmur3.Sum64([]byte(name))
}

// hamtSlot is the slot of hash at shard depth d (0 for the root).
func hamtSlot(hash uint64, d int) int {
	return int(hash >> (56 - 8*d) & 0xff)
}

// buildShard emits the shard at depth d holding entries (sorted by name) and
// returns its CID and cumulative size.
func buildShard(entries []hashedEntry, d int, put func(Block) error, blocks *int) (cid.Cid, uint64, error) {
	if d >= maxHAMTDepth {
		return cid.Undef, 0, fmt.Errorf("entries %q and %q: names with the same 64-bit hash cannot share a HAMT", entries[0].Name, entries[1].Name)
	}
	var groups [HAMTFanout][]hashedEntry
	for _, e := range entries {
		s := hamtSlot(e.hash, d)
		groups[s] = append(groups[s], e)
	}
	type slotLink struct {
		name  string
		c     cid.Cid
		tsize uint64
	}
	var links []slotLink
	var bitfield [HAMTFanout / 8]byte
	var tsize uint64
	for s, g := range groups {
		if len(g) == 0 {
			continue
		}
		bitfield[len(bitfield)-1-s/8] |= 1 << (s % 8)
		prefix := fmt.Sprintf("%02X", s)
		if len(g) == 1 {
			links = append(links, slotLink{prefix + g[0].Name, g[0].Cid, g[0].Tsize})
			tsize += g[0].Tsize
			continue
		}
		c, ts, err := buildShard(g, d+1, put, blocks)
		if err != nil {
			return cid.Undef, 0, err
		}
		links = append(links, slotLink{prefix, c, ts})
		tsize += ts
	}
	bf := bitfield[:]
	for len(bf) > 0 && bf[0] == 0 {
		bf = bf[1:]
	}
	data := FSData{Type: HAMTShard, Data: bf, HashType: HashMurmur3, Fanout: HAMTFanout}.Encode()
	var buf []byte
	for _, l := range links {
		buf = appendLink(buf, l.c, l.name, l.tsize)
	}
	buf = appendPBData(buf, data)
	c, err := emitNode(buf, put)
	if err != nil {
		return cid.Undef, 0, err
	}
	*blocks++
	return c, tsize + uint64(len(buf)), nil
}

// emitNode passes a dag-pb block to put and returns its CID.
func emitNode(buf []byte, put func(Block) error) (cid.Cid, error) {
	c, err := cidFromSHA256(cid.DagProtobuf, sha256.Sum256(buf))
	if err != nil {
		return cid.Undef, err
	}
	if put != nil {
		if err := put(Block{Cid: c, Data: buf}); err != nil {
			return cid.Undef, fmt.Errorf("storing block %s: %w", c, err)
		}
	}
	return c, nil
}

// SymlinkNode emits the UnixFS Symlink node pointing at target, as boxo
// makes it, and returns its CID and size.
func SymlinkNode(target string, put func(Block) error) (cid.Cid, uint64, error) {
	if target == "" {
		return cid.Undef, 0, fmt.Errorf("symlink with an empty target")
	}
	buf := appendPBData(nil, FSData{Type: Symlink, Data: []byte(target)}.Encode())
	c, err := emitNode(buf, put)
	return c, uint64(len(buf)), err
}

// CheckName tells whether name can be a directory entry: not empty, not "."
// or "..", at most MaxNameLen bytes, valid UTF-8 is not required, but no
// '/', '\\', NUL or other control character.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("an entry has an empty name")
	case name == "." || name == "..":
		return fmt.Errorf("entry %q: not a valid name", name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("entry %q...: name of %d bytes is over %d", name[:32], len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b == '/' || b == '\\':
			return fmt.Errorf("entry %q: name contains %q", name, b)
		case b < 0x20 || b == 0x7f:
			return fmt.Errorf("entry %q: name contains control character 0x%02x", name, b)
		}
	}
	return nil
}
