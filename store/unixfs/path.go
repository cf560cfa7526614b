package unixfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// MaxPathSegments bounds the names in a path Resolve walks, and the depth of a
// tree walked below a directory.
const MaxPathSegments = 256

var (
	// ErrNotDir is returned (wrapped) when a path goes through something that
	// is not a directory.
	ErrNotDir = errors.New("not a directory")
	// ErrNoEntry is returned (wrapped, naming the entry) when a directory has
	// no entry of the name looked up.
	ErrNoEntry = errors.New("no such entry")
)

// DirLink is one entry of a directory as decoded: its name, root CID and the
// cumulative size of the DAG under it.
type DirLink struct {
	Name  string
	Cid   cid.Cid
	Tsize uint64
}

// Dir is a decoded directory node: a plain Directory, or one HAMTShard node of
// a sharded directory.
type Dir struct {
	Cid     cid.Cid
	Sharded bool
	// Links are a plain directory's entries in block order, or a shard's
	// links: each value link with its name, each child shard with an empty
	// Name.
	Links []DirLink
	// Slots are a shard's slot numbers, one per link, ascending.
	Slots []int
}

// ParseDir decodes a plain directory or a HAMT shard node. Entry names must
// pass CheckName and be unique, link CIDs must pass CheckCID. A shard must use
// murmur3 and a fanout of 256, name its links with their slot in uppercase
// hexadecimal, have one link per bit of its bitfield, and each entry must be
// in the slot its name hashes to: at depth d (0 for the root shard), with
// prefix the 8*d high bits of the hashes of every name under it. A shard below
// the root must not be empty nor hold a single entry (which belongs in the
// slot above); a single child shard is allowed. Other UnixFS types give an error
// wrapping ErrNotDir.
func ParseDir(c cid.Cid, block []byte, depth int, prefix uint64) (Dir, error) {
	d, err := parseDir(c, block, depth, prefix)
	if err != nil {
		return Dir{}, fmt.Errorf("directory %s: %w", c, err)
	}
	return d, nil
}

func parseDir(c cid.Cid, block []byte, depth int, prefix uint64) (Dir, error) {
	if len(block) > MaxBlockSize {
		return Dir{}, fmt.Errorf("%d bytes exceeds the block limit of %d", len(block), MaxBlockSize)
	}
	if c.Type() != cid.DagProtobuf {
		return Dir{}, fmt.Errorf("codec 0x%x: %w", c.Type(), ErrNotDir)
	}
	pb, err := DecodePB(block)
	if err != nil {
		return Dir{}, err
	}
	if pb.Data == nil {
		return Dir{}, errors.New("dag-pb node has no UnixFS data")
	}
	fs, err := DecodeFSData(pb.Data)
	if err != nil {
		return Dir{}, err
	}
	d := Dir{Cid: c, Links: make([]DirLink, len(pb.Links))}
	for i, l := range pb.Links {
		if err := CheckCID(l.Cid); err != nil {
			return Dir{}, fmt.Errorf("link %d: %w", i, err)
		}
		d.Links[i] = DirLink{Name: l.Name, Cid: l.Cid, Tsize: l.Tsize}
	}
	switch fs.Type {
	case Directory:
		if depth != 0 {
			return Dir{}, errors.New("a plain directory inside a HAMT")
		}
		for _, l := range d.Links {
			if err := CheckName(l.Name); err != nil {
				return Dir{}, err
			}
		}
		if err := checkUnique(d.Links); err != nil {
			return Dir{}, err
		}
		return d, nil
	case HAMTShard:
		d.Sharded = true
		return d, d.checkShard(fs, depth, prefix)
	}
	return Dir{}, fmt.Errorf("a UnixFS %s: %w", fs.Type, ErrNotDir)
}

func checkUnique(links []DirLink) error {
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Name
	}
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return fmt.Errorf("entry %q: duplicate name", names[i])
		}
	}
	return nil
}

// checkShard checks a shard's shape and fills in Slots and the value names.
func (d *Dir) checkShard(fs FSData, depth int, prefix uint64) error {
	if fs.HashType != HashMurmur3 {
		return fmt.Errorf("HAMT hash function 0x%x is not supported (only murmur3 0x22)", fs.HashType)
	}
	if fs.Fanout != HAMTFanout {
		return fmt.Errorf("HAMT fanout %d is not supported (only %d)", fs.Fanout, HAMTFanout)
	}
	if depth >= maxHAMTDepth {
		return fmt.Errorf("HAMT deeper than %d levels", maxHAMTDepth)
	}
	if len(fs.Data) > HAMTFanout/8 {
		return fmt.Errorf("HAMT bitfield of %d bytes, want at most %d", len(fs.Data), HAMTFanout/8)
	}
	if len(fs.Data) > 0 && fs.Data[0] == 0 {
		return errors.New("HAMT bitfield has a leading zero byte")
	}
	var slots []int
	for i := range HAMTFanout {
		j := len(fs.Data) - 1 - i/8
		if j >= 0 && fs.Data[j]&(1<<(i%8)) != 0 {
			slots = append(slots, i)
		}
	}
	if len(slots) != len(d.Links) {
		return fmt.Errorf("HAMT bitfield has %d slots set but the node has %d links", len(slots), len(d.Links))
	}
	if depth > 0 && len(slots) == 0 {
		return errors.New("empty HAMT shard below the root")
	}
	d.Slots = slots
	for i := range d.Links {
		l := &d.Links[i]
		want := fmt.Sprintf("%02X", slots[i])
		if !strings.HasPrefix(l.Name, want) {
			return fmt.Errorf("HAMT link %d named %q, want the prefix %s", i, l.Name, want)
		}
		l.Name = l.Name[hamtPad:]
		if l.Name == "" {
			if l.Cid.Type() != cid.DagProtobuf {
				return fmt.Errorf("HAMT link %d: a child shard that is not dag-pb", i)
			}
			continue
		}
		if depth > 0 && len(d.Links) == 1 {
			// One entry alone belongs in the slot above: only a child shard
			// (two or more names sharing more bits) may be alone here.
			return fmt.Errorf("HAMT shard below the root holds the single entry %q", l.Name)
		}
		if err := CheckName(l.Name); err != nil {
			return err
		}
		h := hamtHash(l.Name)
		if hamtSlot(h, depth) != slots[i] || (depth > 0 && h>>(64-8*depth) != prefix) {
			return fmt.Errorf("entry %q is not in the HAMT slot its name hashes to", l.Name)
		}
	}
	return nil
}

// find returns the link of a shard for name's slot at depth, if any.
func (d *Dir) find(name string, depth int) (DirLink, bool) {
	slot := hamtSlot(hamtHash(name), depth)
	i, ok := slices.BinarySearch(d.Slots, slot)
	if !ok {
		return DirLink{}, false
	}
	return d.Links[i], true
}

// ParsePath splits an IPFS path, "CID", "CID/a/b" or "/ipfs/CID/a/b", into
// its root and names. Empty names (from doubled or trailing slashes) are
// dropped; names "." and "..", and paths of more than MaxPathSegments names,
// are errors.
func ParsePath(s string) (cid.Cid, []string, error) {
	p := s
	if strings.HasPrefix(p, "/ipfs/") {
		p = p[len("/ipfs/"):]
	} else if strings.HasPrefix(p, "/") {
		return cid.Undef, nil, fmt.Errorf("%q: an IPFS path starts with /ipfs/ or a CID", s)
	}
	root, rest, _ := strings.Cut(p, "/")
	c, err := ParseCID(root)
	if err != nil {
		return cid.Undef, nil, err
	}
	var names []string
	for name := range strings.SplitSeq(rest, "/") {
		switch name {
		case "":
			continue
		case ".", "..":
			return cid.Undef, nil, fmt.Errorf("%q: %q is not allowed in a path", s, name)
		}
		names = append(names, name)
		if len(names) > MaxPathSegments {
			return cid.Undef, nil, fmt.Errorf("%q: more than %d names", s, MaxPathSegments)
		}
	}
	return c, names, nil
}

// Resolve walks names from root through plain directories and HAMT shards and
// returns the CID they lead to. Every block comes from get, which verifies it.
func Resolve(ctx context.Context, root cid.Cid, names []string, get GetFunc) (cid.Cid, error) {
	if len(names) > MaxPathSegments {
		return cid.Undef, fmt.Errorf("path of %d names: more than %d", len(names), MaxPathSegments)
	}
	c := root
	for i, name := range names {
		l, err := Lookup(ctx, c, name, get)
		if err != nil {
			if i > 0 {
				return cid.Undef, fmt.Errorf("%s: %w", strings.Join(names[:i], "/"), err)
			}
			return cid.Undef, err
		}
		c = l.Cid
	}
	return c, nil
}

// Lookup finds the entry name of the directory dir, walking its shards if it
// is sharded. An absent name gives an error wrapping ErrNoEntry; a dir that is
// not a directory, one wrapping ErrNotDir.
func Lookup(ctx context.Context, dir cid.Cid, name string, get GetFunc) (DirLink, error) {
	if err := CheckName(name); err != nil {
		return DirLink{}, err
	}
	if dir.Type() == cid.Raw {
		return DirLink{}, fmt.Errorf("%s is a file: %w", dir, ErrNotDir)
	}
	c := dir
	var prefix uint64
	for depth := 0; depth < maxHAMTDepth; depth++ {
		block, err := get(ctx, c)
		if err != nil {
			return DirLink{}, err
		}
		d, err := ParseDir(c, block, depth, prefix)
		if err != nil {
			return DirLink{}, err
		}
		if !d.Sharded {
			for _, l := range d.Links {
				if l.Name == name {
					return l, nil
				}
			}
			return DirLink{}, fmt.Errorf("%q: %w", name, ErrNoEntry)
		}
		l, ok := d.find(name, depth)
		switch {
		case !ok:
			return DirLink{}, fmt.Errorf("%q: %w", name, ErrNoEntry)
		case l.Name == name:
			return l, nil
		case l.Name != "":
			return DirLink{}, fmt.Errorf("%q: %w", name, ErrNoEntry)
		}
		prefix = hamtHash(name) >> (56 - 8*depth)
		c = l.Cid
	}
	return DirLink{}, fmt.Errorf("directory %s: HAMT deeper than %d levels", dir, maxHAMTDepth)
}

// ListDir returns the entries of the directory dir sorted by name, walking
// every shard of a sharded one.
func ListDir(ctx context.Context, dir cid.Cid, get GetFunc) ([]DirLink, error) {
	var out []DirLink
	var walk func(c cid.Cid, depth int, prefix uint64) error
	walk = func(c cid.Cid, depth int, prefix uint64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.Type() == cid.Raw {
			return fmt.Errorf("%s is a file: %w", c, ErrNotDir)
		}
		block, err := get(ctx, c)
		if err != nil {
			return err
		}
		d, err := ParseDir(c, block, depth, prefix)
		if err != nil {
			return err
		}
		if !d.Sharded {
			out = append(out, d.Links...)
			return nil
		}
		for i, l := range d.Links {
			if l.Name != "" {
				out = append(out, l)
				continue
			}
			if err := walk(l.Cid, depth+1, prefix<<8|uint64(d.Slots[i])); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(dir, 0, 0); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b DirLink) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Inspect tells what a block is the root of: its UnixFS type (Raw for a raw
// block, which is a file) and, for a file, its size in bytes; for a symlink,
// the length of its target. It decodes only the block itself.
func Inspect(c cid.Cid, block []byte) (DataType, uint64, error) {
	if c.Type() == cid.Raw {
		return File, uint64(len(block)), nil
	}
	if c.Type() != cid.DagProtobuf {
		return 0, 0, fmt.Errorf("block %s: codec 0x%x is not raw or dag-pb", c, c.Type())
	}
	if len(block) > MaxBlockSize {
		return 0, 0, fmt.Errorf("block %s: %d bytes exceeds the limit of %d", c, len(block), MaxBlockSize)
	}
	_, data, err := scanPB(block)
	if err != nil {
		return 0, 0, fmt.Errorf("block %s: dag-pb: %w", c, err)
	}
	if data == nil {
		return 0, 0, fmt.Errorf("block %s: dag-pb node has no UnixFS data", c)
	}
	fs, err := DecodeFSData(data)
	if err != nil {
		return 0, 0, fmt.Errorf("block %s: %w", c, err)
	}
	switch fs.Type {
	case File, Raw:
		n, err := ParseNode(c, block)
		if err != nil {
			return 0, 0, err
		}
		return File, n.Size, nil
	case Symlink:
		return Symlink, uint64(len(fs.Data)), nil
	case Directory, HAMTShard:
		return Directory, 0, nil
	}
	return fs.Type, 0, nil
}

// Children returns the CIDs a block of a UnixFS DAG links: a file node's
// children, a directory's or shard's entries and child shards, nothing for a
// raw block or a symlink. It decodes only the block itself, checking its
// shape as ParseNode or ParseDir (shard depth unchecked) do.
func Children(c cid.Cid, block []byte) ([]cid.Cid, error) {
	if c.Type() == cid.Raw {
		return nil, nil
	}
	n, err := ParseNode(c, block)
	if err == nil {
		out := make([]cid.Cid, len(n.Children))
		for i, ch := range n.Children {
			out[i] = ch.Cid
		}
		return out, nil
	}
	if !errors.Is(err, ErrNotFile) {
		return nil, err
	}
	pb, err := DecodePB(block)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	fs, err := DecodeFSData(pb.Data)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	switch fs.Type {
	case Directory, HAMTShard:
	default:
		return nil, nil // a symlink, or a type with nothing under it
	}
	out := make([]cid.Cid, len(pb.Links))
	for i, l := range pb.Links {
		if err := CheckCID(l.Cid); err != nil {
			return nil, fmt.Errorf("block %s: link %d: %w", c, i, err)
		}
		out[i] = l.Cid
	}
	return out, nil
}
