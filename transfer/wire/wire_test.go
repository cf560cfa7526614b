package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/transfer/wire"
)

func testCID(t testing.TB, i int) cid.Cid {
	t.Helper()
	h, err := multihash.Sum(fmt.Appendf(nil, "block %d", i), multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, h)
}

func encodeControl(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := wire.AppendControl(nil, &m)
	require.NoError(t, err)
	return b
}

func TestRoundTrip(t *testing.T) {
	var cids []cid.Cid
	for i := range wire.MaxCIDsPerFrame {
		cids = append(cids, testCID(t, i))
	}
	data := bytes.Repeat([]byte{0xab}, wire.MaxBlockSize)
	var buf bytes.Buffer
	buf.Write(encodeControl(t, wire.Message{Type: wire.TypeWant, CIDs: cids}))
	buf.Write(encodeControl(t, wire.Message{Type: wire.TypeCancel, CIDs: cids[:3]}))
	require.NoError(t, wire.WriteBlock(&buf, cids[0], data))
	require.NoError(t, wire.WriteBlock(&buf, cids[1], nil))
	buf.Write(encodeControl(t, wire.Message{Type: wire.TypeDontHave, CID: cids[2]}))

	r := wire.NewReader(&buf, nil)
	m, err := r.Read()
	require.NoError(t, err)
	require.Equal(t, wire.TypeWant, m.Type)
	require.Equal(t, cids, m.CIDs)
	m, err = r.Read()
	require.NoError(t, err)
	require.Equal(t, wire.TypeCancel, m.Type)
	require.Equal(t, cids[:3], m.CIDs)
	m, err = r.Read()
	require.NoError(t, err)
	require.Equal(t, wire.TypeBlock, m.Type)
	require.Equal(t, cids[0], m.CID)
	require.Equal(t, data, m.Data)
	wire.PutBuffer(m.Data)
	m, err = r.Read()
	require.NoError(t, err)
	require.Equal(t, cids[1], m.CID)
	require.Empty(t, m.Data)
	m, err = r.Read()
	require.NoError(t, err)
	require.Equal(t, wire.TypeDontHave, m.Type)
	require.Equal(t, cids[2], m.CID)
	_, err = r.Read()
	require.ErrorIs(t, err, io.EOF)
}

func TestEncoderLimits(t *testing.T) {
	c := testCID(t, 1)
	_, err := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: make([]cid.Cid, wire.MaxCIDsPerFrame+1)})
	require.Error(t, err)
	_, err = wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: []cid.Cid{cid.Undef}})
	require.Error(t, err)
	_, err = wire.AppendControl(nil, &wire.Message{Type: wire.TypeBlock, CID: c})
	require.Error(t, err)
	require.Error(t, wire.WriteBlock(io.Discard, c, make([]byte, wire.MaxBlockSize+1)))
}

func frame(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

func TestHostileInput(t *testing.T) {
	c := testCID(t, 1)
	cb := c.Bytes()
	blockBody := append(append([]byte{byte(wire.TypeBlock)}, binary.AppendUvarint(nil, uint64(len(cb)))...), cb...)
	tests := []struct {
		name    string
		in      []byte
		allowed func(wire.Type) bool
		want    error
	}{
		{"oversized length", binary.AppendUvarint(nil, wire.MaxFrameSize+1), nil, wire.ErrFrameTooLarge},
		{"huge varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, nil, wire.ErrFrameTooLarge},
		{"oversized control", append(binary.AppendUvarint(nil, wire.MaxControlSize+1), byte(wire.TypeWant)), nil, wire.ErrFrameTooLarge},
		{"empty frame", []byte{0}, nil, wire.ErrMalformed},
		{"unknown type", frame([]byte{0x7f, 1, 2}), nil, wire.ErrUnknownType},
		{"type zero", frame([]byte{0}), nil, wire.ErrUnknownType},
		{"type not allowed", frame(blockBody), func(t wire.Type) bool { return t != wire.TypeBlock }, wire.ErrUnknownType},
		{"too many cids", frame(append([]byte{byte(wire.TypeWant)}, binary.AppendUvarint(nil, wire.MaxCIDsPerFrame+1)...)), nil, wire.ErrMalformed},
		{"cid count beyond body", frame([]byte{byte(wire.TypeWant), 5}), nil, wire.ErrMalformed},
		{"garbage cid", frame([]byte{byte(wire.TypeDontHave), 3, 1, 2, 3}), nil, wire.ErrMalformed},
		{"trailing bytes", frame(append(encodeControl(t, wire.Message{Type: wire.TypeDontHave, CID: c})[1:], 9)), nil, wire.ErrMalformed},
		{"block cid longer than frame", frame([]byte{byte(wire.TypeBlock), 40, 1}), nil, wire.ErrMalformed},
		{"truncated block", append(binary.AppendUvarint(nil, uint64(len(blockBody)+100)), blockBody...), nil, io.ErrUnexpectedEOF},
		{"truncated length", []byte{0x80}, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.NewReader(bytes.NewReader(tt.in), tt.allowed).Read()
			require.ErrorIs(t, err, tt.want)
			if !errors.Is(tt.want, io.ErrUnexpectedEOF) {
				require.ErrorIs(t, err, wire.ErrProtocol)
			}
		})
	}
}

func TestBufferPool(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 4097, 16 << 10, 1 << 20, wire.MaxBlockSize} {
		b := wire.GetBuffer(n)
		require.Len(t, b, n)
		require.GreaterOrEqual(t, cap(b), n)
		wire.PutBuffer(b)
	}
	wire.PutBuffer(make([]byte, 10)) // foreign buffers are ignored
}

func FuzzReader(f *testing.F) {
	c := testCID(f, 1)
	f.Add(encodeControl(f, wire.Message{Type: wire.TypeWant, CIDs: []cid.Cid{c, c}}))
	f.Add(encodeControl(f, wire.Message{Type: wire.TypeDontHave, CID: c}))
	var b bytes.Buffer
	_ = wire.WriteBlock(&b, c, []byte("hello"))
	f.Add(b.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := wire.NewReader(bytes.NewReader(in), nil)
		for range 64 {
			m, err := r.Read()
			if err != nil {
				return
			}
			if m.Type == wire.TypeBlock {
				if len(m.Data) > wire.MaxBlockSize {
					t.Fatalf("block of %d bytes", len(m.Data))
				}
				var out bytes.Buffer
				if err := wire.WriteBlock(&out, m.CID, m.Data); err != nil {
					t.Fatal(err)
				}
				wire.PutBuffer(m.Data)
				continue
			}
			if _, err := wire.AppendControl(nil, &m); err != nil {
				t.Fatalf("decoded %s does not re-encode: %v", m.Type, err)
			}
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	c := testCID(f, 2)
	f.Add(encodeControl(f, wire.Message{Type: wire.TypeCancel, CIDs: []cid.Cid{c}})[1:])
	f.Add(encodeControl(f, wire.Message{Type: wire.TypeDontHave, CID: c})[1:])
	f.Add([]byte{byte(wire.TypeWant), 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := wire.DecodeControl(body)
		if err != nil {
			return
		}
		out, err := wire.AppendControl(nil, &m)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		m2, err := wire.NewReader(bytes.NewReader(out), nil).Read()
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if m2.Type != m.Type || len(m2.CIDs) != len(m.CIDs) || !m2.CID.Equals(m.CID) {
			t.Fatalf("round trip changed the message")
		}
	})
}
