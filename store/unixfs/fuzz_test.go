package unixfs_test

import (
	"bytes"
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
