package unixfs_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// seedBlocks returns real blocks: a small DAG of ours and a legacy one.
func seedBlocks(f *testing.F) []storedBlock {
	f.Helper()
	_, ours := ourImport(f, randomBytes(31, 9*256+3), 256, 3)
	_, legacy := boxoImportWith(f, randomBytes(32, 3*256+1), 256, 2, false, cid.V0Builder{})
	return append(ours, legacy...)
}

func FuzzDecodePB(f *testing.F) {
	for _, b := range seedBlocks(f) {
		if b.Cid.Type() == cid.DagProtobuf {
			f.Add(b.Data)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := unixfs.DecodePB(b)
		if err != nil {
			return
		}
		enc := unixfs.EncodePB(n)
		n2, err := unixfs.DecodePB(enc)
		if err != nil {
			t.Fatalf("re-decoding an encoded node: %v", err)
		}
		if !bytes.Equal(enc, unixfs.EncodePB(n2)) {
			t.Fatal("encoding is not stable")
		}
		if canonicalLinks(b, n) && !bytes.Equal(b, enc) {
			t.Fatalf("canonical input did not round-trip:\n in %x\nout %x", b, enc)
		}
	})
}

// canonicalLinks tells whether every link of b carries Name and Tsize, which
// the encoder always writes: only then can b be canonical. A cheap check: the
// re-encoding has the same length.
func canonicalLinks(b []byte, n unixfs.PBNode) bool {
	return len(unixfs.EncodePB(n)) == len(b)
}

func FuzzDecodeFSData(f *testing.F) {
	for _, b := range seedBlocks(f) {
		if b.Cid.Type() != cid.DagProtobuf {
			continue
		}
		n, err := unixfs.DecodePB(b.Data)
		if err == nil && n.Data != nil {
			f.Add(n.Data)
		}
	}
	f.Add([]byte{0x22, 3, 1, 2, 3, 0x18, 6, 0x08, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := unixfs.DecodeFSData(b)
		if err != nil {
			return
		}
		enc := d.Encode()
		d2, err := unixfs.DecodeFSData(enc)
		if err != nil {
			t.Fatalf("re-decoding encoded data: %v", err)
		}
		if !bytes.Equal(enc, d2.Encode()) {
			t.Fatal("encoding is not stable")
		}
		if len(enc) == len(b) && !bytes.Equal(enc, b) && inCanonicalOrder(b) {
			t.Fatalf("canonical input did not round-trip:\n in %x\nout %x", b, enc)
		}
	})
}

// inCanonicalOrder tells whether b's fields are only 1-4, in ascending order,
// with unpacked blocksizes: the form Encode writes.
func inCanonicalOrder(b []byte) bool {
	last := byte(0)
	for i := 0; i < len(b); {
		tag := b[i]
		field, wire := tag>>3, tag&7
		if tag >= 0x80 || field < last || field > 4 || (field == 4 && wire != 0) || (field == last && field != 4) {
			return false
		}
		last = field
		i++
		// Skip the value.
		if wire == 0 {
			for i < len(b) && b[i] >= 0x80 {
				i++
			}
			i++
			continue
		}
		l := 0
		for shift := 0; i < len(b); shift += 7 {
			c := b[i]
			i++
			l |= int(c&0x7f) << shift
			if c < 0x80 || shift > 28 {
				break
			}
		}
		i += l
	}
	return true
}

func FuzzParseNode(f *testing.F) {
	for _, b := range seedBlocks(f) {
		f.Add(b.Data, b.Cid.Type() == cid.Raw)
	}
	f.Fuzz(func(t *testing.T, b []byte, raw bool) {
		codec := uint64(cid.DagProtobuf)
		if raw {
			codec = cid.Raw
		}
		c := sumCID(t, codec, b)
		n, err := unixfs.ParseNode(c, b)
		if err != nil {
			return
		}
		if err := unixfs.Verify(c, b); err != nil {
			t.Fatal(err)
		}
		// A parsed node is self-consistent.
		off := uint64(len(n.Data))
		for _, ch := range n.Children {
			if ch.Offset != off {
				t.Fatalf("child at offset %d, want %d", ch.Offset, off)
			}
			off += ch.Size
			if err := unixfs.CheckCID(ch.Cid); err != nil {
				t.Fatal(err)
			}
		}
		if off != n.Size {
			t.Fatalf("children end at %d, node size %d", off, n.Size)
		}
		if len(n.Children) > unixfs.MaxLinks {
			t.Fatal("too many children")
		}
	})
}

// dirSeeds returns directory blocks: a plain directory, and the shards of a
// sharded one.
func dirSeeds(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	keep := func(b unixfs.Block) error {
		out = append(out, bytes.Clone(b.Data))
		return nil
	}
	entries, _ := syntheticEntries(3, 4)
	entries[1].Name = "ü.txt"
	_, err := unixfs.BuildDirectory(entries, keep)
	if err != nil {
		f.Fatal(err)
	}
	many, _ := syntheticEntries(4500, 50)
	res, err := unixfs.BuildDirectory(many, keep)
	if err != nil || !res.Sharded {
		f.Fatal("no sharded seed", err)
	}
	// Only the smaller shard nodes: the root of 4500 entries is large.
	small := out[:1]
	for _, b := range out[1:] {
		if len(b) < 4096 {
			small = append(small, b)
		}
	}
	return small
}

func FuzzParseDir(f *testing.F) {
	for _, b := range dirSeeds(f) {
		f.Add(b, uint8(0), uint64(0))
		f.Add(b, uint8(1), uint64(0x42))
	}
	f.Fuzz(func(t *testing.T, b []byte, depth uint8, prefix uint64) {
		c := sumCID(t, cid.DagProtobuf, b)
		d, err := unixfs.ParseDir(c, b, int(depth), prefix)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for i, l := range d.Links {
			if d.Sharded && l.Name == "" {
				if l.Cid.Type() != cid.DagProtobuf {
					t.Fatal("raw child shard accepted")
				}
				continue
			}
			if err := unixfs.CheckName(l.Name); err != nil {
				t.Fatalf("link %d: %v", i, err)
			}
			if names[l.Name] {
				t.Fatalf("duplicate %q accepted", l.Name)
			}
			names[l.Name] = true
			if err := unixfs.CheckCID(l.Cid); err != nil {
				t.Fatal(err)
			}
		}
		if d.Sharded && len(d.Slots) != len(d.Links) {
			t.Fatal("slots and links differ")
		}
		if _, err := unixfs.Children(c, b); err != nil {
			t.Fatalf("a parsed directory's children: %v", err)
		}
	})
}

func FuzzChildren(f *testing.F) {
	for _, b := range dirSeeds(f) {
		f.Add(b)
	}
	for _, b := range seedBlocks(f) {
		if b.Cid.Type() == cid.DagProtobuf {
			f.Add(b.Data)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := sumCID(t, cid.DagProtobuf, b)
		cs, err := unixfs.Children(c, b)
		if err != nil {
			return
		}
		for _, ch := range cs {
			if err := unixfs.CheckCID(ch); err != nil {
				t.Fatal(err)
			}
		}
		_, _, _ = unixfs.Inspect(c, b)
	})
}

func FuzzParsePath(f *testing.F) {
	f.Add("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e/a/b")
	f.Add("/ipfs/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e//ü/")
	f.Add("/ipfs/x/../y")
	f.Fuzz(func(t *testing.T, s string) {
		c, names, err := unixfs.ParsePath(s)
		if err != nil {
			return
		}
		if err := unixfs.CheckCID(c); err != nil {
			t.Fatal(err)
		}
		if len(names) > unixfs.MaxPathSegments {
			t.Fatal("too many names")
		}
		for _, n := range names {
			if n == "" || n == "." || n == ".." || strings.Contains(n, "/") {
				t.Fatalf("name %q accepted", n)
			}
		}
	})
}
