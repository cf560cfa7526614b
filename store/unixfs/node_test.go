package unixfs_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// sumCID makes the CIDv1 sha2-256 of b with the given codec.
func sumCID(t testing.TB, codec uint64, b []byte) cid.Cid {
	t.Helper()
	c, err := cid.V1Builder{Codec: codec, MhType: multihash.SHA2_256}.Sum(b)
	require.NoError(t, err)
	return c
}

// fileNode encodes a dag-pb UnixFS File node.
func fileNode(links []unixfs.Link, fs unixfs.FSData) []byte {
	return unixfs.EncodePB(unixfs.PBNode{Links: links, Data: fs.Encode()})
}

func TestParseNodeImported(t *testing.T) {
	data := randomBytes(9, 10*256+17)
	res, blocks := ourImport(t, data, 256, 4)
	byCid := map[cid.Cid][]byte{}
	for _, b := range blocks {
		byCid[b.Cid] = b.Data
	}
	// Walk the DAG with ParseNode alone and rebuild the file.
	var out []byte
	var walk func(c cid.Cid, want uint64)
	walk = func(c cid.Cid, want uint64) {
		n, err := unixfs.ParseNode(c, byCid[c])
		require.NoError(t, err)
		require.Equal(t, want, n.Size)
		require.Equal(t, c, n.Cid)
		out = append(out, n.Data...)
		var off uint64
		for _, ch := range n.Children {
			require.Equal(t, off, ch.Offset)
			off += ch.Size
			walk(ch.Cid, ch.Size)
		}
		if len(n.Children) > 0 {
			require.Nil(t, n.Data, "inner nodes carry no data")
			require.Equal(t, n.Size, off)
		}
	}
	walk(res.Root, uint64(len(data)))
	require.Equal(t, data, out)
}

func TestParseNodeRejectsInconsistent(t *testing.T) {
	leaf := []byte("some file bytes")
	lc := sumCID(t, cid.Raw, leaf)
	link := unixfs.Link{Cid: lc, Tsize: uint64(len(leaf))}
	size := uint64(len(leaf))
	sha512, err := multihash.Sum(leaf, multihash.SHA2_512, -1)
	require.NoError(t, err)

	tooMany := make([]unixfs.Link, unixfs.MaxLinks+1)
	tooManySizes := make([]uint64, unixfs.MaxLinks+1)
	for i := range tooMany {
		tooMany[i] = link
		tooManySizes[i] = size
	}

	tests := []struct {
		name  string
		codec uint64
		block []byte
		want  string
	}{
		{"more links than blocksizes", cid.DagProtobuf,
			fileNode([]unixfs.Link{link, link}, unixfs.FSData{Type: unixfs.File, FileSize: 2 * size, HasFileSize: true, BlockSizes: []uint64{size}}),
			"2 links but 1 blocksizes"},
		{"more blocksizes than links", cid.DagProtobuf,
			fileNode([]unixfs.Link{link}, unixfs.FSData{Type: unixfs.File, FileSize: 2 * size, HasFileSize: true, BlockSizes: []uint64{size, size}}),
			"1 links but 2 blocksizes"},
		{"filesize too large", cid.DagProtobuf,
			fileNode([]unixfs.Link{link}, unixfs.FSData{Type: unixfs.File, FileSize: size + 1, HasFileSize: true, BlockSizes: []uint64{size}}),
			"add up to"},
		{"filesize ignores inline data", cid.DagProtobuf,
			fileNode([]unixfs.Link{link}, unixfs.FSData{Type: unixfs.File, Data: []byte("ab"), FileSize: size, HasFileSize: true, BlockSizes: []uint64{size}}),
			"add up to"},
		{"too many links", cid.DagProtobuf,
			fileNode(tooMany, unixfs.FSData{Type: unixfs.File, FileSize: size * uint64(len(tooMany)), HasFileSize: true, BlockSizes: tooManySizes}),
			"exceeds the limit"},
		{"blocksizes overflow", cid.DagProtobuf,
			fileNode([]unixfs.Link{link, link}, unixfs.FSData{Type: unixfs.File, BlockSizes: []uint64{1 << 63, 1 << 63}}),
			"overflow"},
		{"child with unsupported hash", cid.DagProtobuf,
			fileNode([]unixfs.Link{{Cid: cid.NewCidV1(cid.Raw, sha512)}}, unixfs.FSData{Type: unixfs.File, FileSize: size, HasFileSize: true, BlockSizes: []uint64{size}}),
			"sha2-512"},
		{"directory", cid.DagProtobuf, fileNode(nil, unixfs.FSData{Type: unixfs.Directory}), "not a file"},
		{"symlink", cid.DagProtobuf, fileNode(nil, unixfs.FSData{Type: unixfs.Symlink, Data: []byte("/etc")}), "not a file"},
		{"HAMT shard", cid.DagProtobuf, fileNode(nil, unixfs.FSData{Type: unixfs.HAMTShard}), "not a file"},
		{"no UnixFS data", cid.DagProtobuf, unixfs.EncodePB(unixfs.PBNode{Links: []unixfs.Link{link}}), "no UnixFS data"},
		{"garbage", cid.DagProtobuf, []byte{0xff, 0xff}, "dag-pb"},
		{"dag-cbor codec", cid.DagCBOR, []byte{0xa0}, "codec"},
		{"oversized raw block", cid.Raw, make([]byte, unixfs.MaxBlockSize+1), "exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := unixfs.ParseNode(sumCID(t, tt.codec, tt.block), tt.block)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestParseNodeNotFileIs(t *testing.T) {
	b := fileNode(nil, unixfs.FSData{Type: unixfs.Directory})
	_, err := unixfs.ParseNode(sumCID(t, cid.DagProtobuf, b), b)
	require.ErrorIs(t, err, unixfs.ErrNotFile)
}

func TestParseNodeInlineData(t *testing.T) {
	leaf := []byte("tail")
	lc := sumCID(t, cid.Raw, leaf)
	b := fileNode([]unixfs.Link{{Cid: lc, Tsize: 4}}, unixfs.FSData{Type: unixfs.File, Data: []byte("head"), FileSize: 8, HasFileSize: true, BlockSizes: []uint64{4}})
	n, err := unixfs.ParseNode(sumCID(t, cid.DagProtobuf, b), b)
	require.NoError(t, err)
	require.Equal(t, uint64(8), n.Size)
	require.Equal(t, []byte("head"), n.Data)
	require.Equal(t, []unixfs.Child{{Cid: lc, Offset: 4, Size: 4}}, n.Children)

	// Without filesize the size is what the node holds.
	b = fileNode(nil, unixfs.FSData{Type: unixfs.Raw, Data: []byte("xyz")})
	n, err = unixfs.ParseNode(sumCID(t, cid.DagProtobuf, b), b)
	require.NoError(t, err)
	require.Equal(t, uint64(3), n.Size)
}

func TestVerify(t *testing.T) {
	block := randomBytes(11, 1000)
	for _, mh := range []uint64{multihash.SHA2_256, multihash.SHA2_512, multihash.BLAKE2B_MIN + 31, multihash.SHA3_256} {
		c, err := cid.V1Builder{Codec: cid.Raw, MhType: mh}.Sum(block)
		require.NoError(t, err)
		require.NoError(t, unixfs.Verify(c, block))
		for _, i := range []int{0, 500, 999} {
			bad := bytes.Clone(block)
			bad[i] ^= 1
			err := unixfs.Verify(c, bad)
			require.ErrorIs(t, err, unixfs.ErrHashMismatch)
			require.ErrorContains(t, err, c.String())
		}
		require.ErrorIs(t, unixfs.Verify(c, block[:999]), unixfs.ErrHashMismatch)
	}
	// CIDv0.
	c, err := cid.V0Builder{}.Sum(block)
	require.NoError(t, err)
	require.NoError(t, unixfs.Verify(c, block))
	require.ErrorIs(t, unixfs.Verify(c, append(bytes.Clone(block), 0)), unixfs.ErrHashMismatch)
	// An unknown hash function is an error, but not a mismatch.
	err = unixfs.Verify(cid.NewCidV1(cid.Raw, mustEncode(t, []byte{1, 2}, 0x7777)), block)
	require.Error(t, err)
	require.False(t, errors.Is(err, unixfs.ErrHashMismatch))
	require.Error(t, unixfs.Verify(cid.Undef, block))
}

func mustEncode(t *testing.T, digest []byte, code uint64) multihash.Multihash {
	t.Helper()
	m, err := multihash.Encode(digest, code)
	require.NoError(t, err)
	return m
}

func TestCheckCID(t *testing.T) {
	block := []byte("x")
	v0, err := cid.V0Builder{}.Sum(block)
	require.NoError(t, err)
	sha512, err := multihash.Sum(block, multihash.SHA2_512, -1)
	require.NoError(t, err)
	short, err := multihash.Sum(block, multihash.SHA2_256, 20)
	require.NoError(t, err)

	require.NoError(t, unixfs.CheckCID(v0))
	require.NoError(t, unixfs.CheckCID(sumCID(t, cid.Raw, block)))
	require.NoError(t, unixfs.CheckCID(sumCID(t, cid.DagProtobuf, block)))

	for name, tt := range map[string]struct {
		c    cid.Cid
		want string
	}{
		"undefined": {cid.Undef, "undefined"},
		"dag-cbor":  {sumCID(t, cid.DagCBOR, block), "codec 0x71"},
		"sha2-512":  {cid.NewCidV1(cid.Raw, sha512), "sha2-512"},
		"truncated": {cid.NewCidV1(cid.Raw, short), "20 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, unixfs.CheckCID(tt.c), tt.want)
		})
	}
}

func TestDecodePBRoundTrip(t *testing.T) {
	leaf := sumCID(t, cid.Raw, []byte("a"))
	v0, err := cid.V0Builder{}.Sum([]byte("b"))
	require.NoError(t, err)
	for name, n := range map[string]unixfs.PBNode{
		"empty":      {},
		"empty data": {Data: []byte{}},
		"data":       {Data: []byte("hello")},
		"links":      {Links: []unixfs.Link{{Cid: leaf, Tsize: 1}, {Cid: v0, Name: "file.txt", Tsize: 1 << 40}}},
		"both":       {Links: []unixfs.Link{{Cid: leaf}}, Data: []byte{8, 2}},
	} {
		t.Run(name, func(t *testing.T) {
			b := unixfs.EncodePB(n)
			got, err := unixfs.DecodePB(b)
			require.NoError(t, err)
			require.Equal(t, n.Data == nil, got.Data == nil)
			require.Equal(t, string(n.Data), string(got.Data))
			require.Equal(t, len(n.Links), len(got.Links))
			for i := range n.Links {
				require.Equal(t, n.Links[i], got.Links[i])
			}
			require.Equal(t, b, unixfs.EncodePB(got))
		})
	}
}

func TestDecodePBRejects(t *testing.T) {
	leaf := sumCID(t, cid.Raw, []byte("a"))
	good := unixfs.EncodePB(unixfs.PBNode{Links: []unixfs.Link{{Cid: leaf, Tsize: 1}}, Data: []byte("d")})
	link := good[:len(good)-3] // the Links field alone
	linkBody := link[2:]
	withLink := func(body []byte) []byte { return append([]byte{0x12, byte(len(body))}, body...) }
	hash := linkBody[:2+leaf.ByteLen()]

	for name, b := range map[string][]byte{
		"data before links":   append([]byte{0x0a, 1, 'd'}, link...),
		"duplicate data":      {0x0a, 0, 0x0a, 0},
		"unknown field":       {0x1a, 0},
		"wrong wire type":     {0x08, 1},
		"truncated length":    {0x0a, 5, 1},
		"truncated tag":       {0x80},
		"non-minimal varint":  {0x0a, 0x80, 0x00},
		"varint overflow":     {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"link without hash":   withLink([]byte{0x12, 0, 0x18, 1}),
		"name before hash":    withLink(append([]byte{0x12, 0}, hash...)),
		"duplicate hash":      withLink(append(bytes.Clone(hash), hash...)),
		"hash not a CID":      withLink([]byte{0x0a, 2, 0xff, 0xff}),
		"bytes after the CID": withLink(append([]byte{0x0a, byte(leaf.ByteLen() + 1)}, append(leaf.Bytes(), 0)...)),
		"tsize wire type":     withLink(append(bytes.Clone(hash), 0x1a, 0)),
		"unknown link field":  withLink(append(bytes.Clone(hash), 0x20, 0)),
		"field number zero":   {0x02, 0},
		"oversized":           append([]byte{0x0a, 0x81, 0x80, 0x80, 0x01}, make([]byte, unixfs.MaxBlockSize)...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := unixfs.DecodePB(b)
			require.Error(t, err)
			require.Contains(t, err.Error(), "dag-pb")
		})
	}
}

func TestFSDataRoundTrip(t *testing.T) {
	for name, d := range map[string]unixfs.FSData{
		"inner":     {Type: unixfs.File, FileSize: 3 << 20, HasFileSize: true, BlockSizes: []uint64{1 << 20, 1 << 20, 1 << 20}},
		"leaf":      {Type: unixfs.File, Data: []byte("abc"), FileSize: 3, HasFileSize: true},
		"empty":     {Type: unixfs.Raw, Data: []byte{}},
		"directory": {Type: unixfs.Directory},
	} {
		t.Run(name, func(t *testing.T) {
			b := d.Encode()
			got, err := unixfs.DecodeFSData(b)
			require.NoError(t, err)
			require.Equal(t, d, got)
			require.Equal(t, b, got.Encode())
		})
	}
}

func TestDecodeFSDataForms(t *testing.T) {
	// Packed blocksizes, fields out of order and mode/mtime are all valid
	// protobuf.
	b := []byte{0x22, 3, 1, 2, 3, 0x18, 6, 0x08, 2, 0x38, 0xa4, 0x03, 0x42, 2, 0x08, 1}
	d, err := unixfs.DecodeFSData(b)
	require.NoError(t, err)
	require.Equal(t, unixfs.FSData{Type: unixfs.File, FileSize: 6, HasFileSize: true, BlockSizes: []uint64{1, 2, 3}}, d)

	for name, b := range map[string][]byte{
		"no type":            {0x18, 1},
		"unknown type":       {0x08, 9},
		"duplicate type":     {0x08, 2, 0x08, 2},
		"duplicate filesize": {0x08, 2, 0x18, 1, 0x18, 1},
		"duplicate data":     {0x08, 2, 0x12, 0, 0x12, 0},
		"type wire type":     {0x0a, 0},
		"truncated packed":   {0x08, 2, 0x22, 2, 0x80},
		"group wire type":    {0x08, 2, 0x4b},
		"truncated data":     {0x08, 2, 0x12, 3, 1},
		"non-minimal varint": {0x08, 0x82, 0x00},
		"mtime not bytes":    {0x08, 2, 0x40, 1},
		"truncated fixed64":  {0x08, 2, 0x49, 1, 2},
		"blocksizes fixed32": {0x08, 2, 0x25, 1, 2, 3, 4},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := unixfs.DecodeFSData(b)
			require.Error(t, err)
		})
	}
}
