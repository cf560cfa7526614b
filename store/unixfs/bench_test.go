package unixfs_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// genReader yields n deterministic pseudo-random bytes quickly by cycling
// through a random pattern whose length is not a multiple of any chunk size,
// so no two chunks are alike.
type genReader struct {
	pattern []byte
	left    int64
	pos     int
}

const genPeriod = 1<<20 + 4093

var genPattern = func() []byte {
	p := make([]byte, genPeriod)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(p)
	return p
}()

func newGenReader(n int64) *genReader { return &genReader{pattern: genPattern, left: n} }

func (g *genReader) Read(b []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > g.left {
		b = b[:g.left]
	}
	n := 0
	for n < len(b) {
		m := copy(b[n:], g.pattern[g.pos:])
		n += m
		g.pos = (g.pos + m) % genPeriod
	}
	g.left -= int64(n)
	return n, nil
}

// BenchmarkImportOnlyHash imports 256 MiB with put == nil.
func BenchmarkImportOnlyHash(b *testing.B) {
	const size = 256 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		res, err := unixfs.Import(b.Context(), newGenReader(size), unixfs.ImportOptions{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Size != size {
			b.Fatalf("imported %d bytes", res.Size)
		}
	}
}

// BenchmarkParseNode parses a full inner node of 1024 links.
func BenchmarkParseNode(b *testing.B) {
	var root cid.Cid
	var block []byte
	_, err := unixfs.Import(b.Context(), newGenReader(unixfs.MaxLinks*256), unixfs.ImportOptions{ChunkSize: 256}, func(blk unixfs.Block) error {
		if !blk.Leaf {
			root, block = blk.Cid, bytes.Clone(blk.Data)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := unixfs.ParseNode(root, block)
		if err != nil {
			b.Fatal(err)
		}
		if len(n.Children) != unixfs.MaxLinks {
			b.Fatalf("%d children", len(n.Children))
		}
	}
}

// BenchmarkReader reads a 64 MiB file back from a map of blocks through Read
// with a 256 KiB buffer, as a consumer that copies would.
func BenchmarkReader(b *testing.B) {
	const size = 64 << 20
	blocks := map[cid.Cid][]byte{}
	res, err := unixfs.Import(b.Context(), newGenReader(size), unixfs.ImportOptions{}, func(blk unixfs.Block) error {
		blocks[blk.Cid] = bytes.Clone(blk.Data)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	get := func(_ context.Context, c cid.Cid) ([]byte, error) { return blocks[c], nil }
	buf := make([]byte, 256<<10)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r := unixfs.NewReader(b.Context(), res.Root, get)
		total := 0
		for {
			n, err := r.Read(buf)
			total += n
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if total != size {
			b.Fatalf("read %d bytes", total)
		}
		r.Close()
	}
}
