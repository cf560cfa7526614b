package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Type is the message type, the first byte of every frame body.
type Type byte

// WARNING: only append to this list. The values are on the wire.
const (
	TypeInvalid  Type = 0 // never sent
	TypeWant     Type = 1 // client -> server: CIDs wanted, answered in order
	TypeCancel   Type = 2 // client -> server: CIDs no longer wanted
	TypeBlock    Type = 3 // server -> client: one block (CID, data)
	TypeDontHave Type = 4 // server -> client: the server lacks one wanted CID
)

func (t Type) String() string {
	switch t {
	case TypeWant:
		return "want"
	case TypeCancel:
		return "cancel"
	case TypeBlock:
		return "block"
	case TypeDontHave:
		return "dont-have"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// Limits of the protocol. A frame over any of them is a protocol violation.
const (
	// MaxBlockSize is the largest block payload.
	MaxBlockSize = 2 << 20
	// MaxFrameSize caps the body of any frame (a block plus its header).
	MaxFrameSize = MaxBlockSize + 1024
	// MaxCIDLen caps the binary length of one CID.
	MaxCIDLen = 256
	// MaxCIDsPerFrame caps the CIDs of one Want or Cancel frame.
	MaxCIDsPerFrame = 512
	// MaxControlSize caps the body of a Want, Cancel or DontHave frame.
	MaxControlSize = 1 + binary.MaxVarintLen64 + MaxCIDsPerFrame*(binary.MaxVarintLen16+MaxCIDLen)
)

// Errors returned by the decoders; each wraps ErrProtocol.
var (
	ErrProtocol      = errors.New("protocol violation")
	ErrFrameTooLarge = fmt.Errorf("%w: frame too large", ErrProtocol)
	ErrUnknownType   = fmt.Errorf("%w: unknown message type", ErrProtocol)
	ErrMalformed     = fmt.Errorf("%w: malformed frame", ErrProtocol)
)

// Message is one decoded frame. Want and Cancel carry CIDs; Block and
// DontHave carry CID; Block carries Data, a pooled buffer that its receiver
// returns with PutBuffer once done with it.
type Message struct {
	Type Type
	CIDs []cid.Cid
	CID  cid.Cid
	Data []byte
}

// Size is the encoded body size of the message.
func (m *Message) Size() int {
	switch m.Type {
	case TypeWant, TypeCancel:
		n := 1 + uvarintLen(uint64(len(m.CIDs)))
		for _, c := range m.CIDs {
			l := c.ByteLen()
			n += uvarintLen(uint64(l)) + l
		}
		return n
	case TypeBlock:
		l := m.CID.ByteLen()
		return 1 + uvarintLen(uint64(l)) + l + len(m.Data)
	case TypeDontHave:
		l := m.CID.ByteLen()
		return 1 + uvarintLen(uint64(l)) + l
	}
	return 1
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// AppendControl appends the full frame (length prefix included) of a Want,
// Cancel or DontHave message to dst. It fails if the message breaks a limit.
func AppendControl(dst []byte, m *Message) ([]byte, error) {
	switch m.Type {
	case TypeWant, TypeCancel:
		if len(m.CIDs) > MaxCIDsPerFrame {
			return dst, fmt.Errorf("%d CIDs in one frame (max %d)", len(m.CIDs), MaxCIDsPerFrame)
		}
		for _, c := range m.CIDs {
			if c.ByteLen() > MaxCIDLen || !c.Defined() {
				return dst, fmt.Errorf("invalid CID %s in %s frame", c, m.Type)
			}
		}
	case TypeDontHave:
		if m.CID.ByteLen() > MaxCIDLen || !m.CID.Defined() {
			return dst, fmt.Errorf("invalid CID in %s frame", m.Type)
		}
	default:
		return dst, fmt.Errorf("%s is not a control message", m.Type)
	}
	dst = binary.AppendUvarint(dst, uint64(m.Size()))
	dst = append(dst, byte(m.Type))
	if m.Type == TypeDontHave {
		return appendCID(dst, m.CID), nil
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.CIDs)))
	for _, c := range m.CIDs {
		dst = appendCID(dst, c)
	}
	return dst, nil
}

func appendCID(dst []byte, c cid.Cid) []byte {
	b := c.KeyString() // the binary form, without allocation beyond the string header
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendBlockHeader appends the length prefix and header of a Block frame
// carrying dataLen bytes for c; the caller writes the data right after it.
func AppendBlockHeader(dst []byte, c cid.Cid, dataLen int) ([]byte, error) {
	if !c.Defined() || c.ByteLen() > MaxCIDLen {
		return dst, errors.New("invalid CID in block frame")
	}
	m := Message{Type: TypeBlock, CID: c}
	size := m.Size() + dataLen
	if dataLen > MaxBlockSize || size > MaxFrameSize {
		return dst, fmt.Errorf("block %s of %d bytes exceeds the %d-byte cap", c, dataLen, MaxBlockSize)
	}
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = append(dst, byte(TypeBlock))
	return appendCID(dst, c), nil
}

// WriteBlock writes a Block frame to w: the header, then data without
// copying it into an intermediate buffer.
func WriteBlock(w io.Writer, c cid.Cid, data []byte) error {
	var hdr [16 + MaxCIDLen]byte
	h, err := AppendBlockHeader(hdr[:0], c, len(data))
	if err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// DecodeControl decodes the body of a Want, Cancel or DontHave frame (type
// byte included). It never panics and allocates at most MaxCIDsPerFrame CIDs.
func DecodeControl(body []byte) (Message, error) {
	if len(body) == 0 {
		return Message{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if len(body) > MaxControlSize {
		return Message{}, ErrFrameTooLarge
	}
	m := Message{Type: Type(body[0])}
	rest := body[1:]
	switch m.Type {
	case TypeWant, TypeCancel:
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > MaxCIDsPerFrame {
			return Message{}, fmt.Errorf("%w: bad CID count", ErrMalformed)
		}
		rest = rest[k:]
		m.CIDs = make([]cid.Cid, 0, n)
		for i := uint64(0); i < n; i++ {
			c, r, err := decodeCID(rest)
			if err != nil {
				return Message{}, err
			}
			m.CIDs = append(m.CIDs, c)
			rest = r
		}
	case TypeDontHave:
		c, r, err := decodeCID(rest)
		if err != nil {
			return Message{}, err
		}
		m.CID, rest = c, r
	case TypeBlock:
		return Message{}, fmt.Errorf("%w: block is not a control message", ErrMalformed)
	default:
		return Message{}, fmt.Errorf("%w %d", ErrUnknownType, body[0])
	}
	if len(rest) != 0 {
		return Message{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return m, nil
}

func decodeCID(b []byte) (cid.Cid, []byte, error) {
	l, k := binary.Uvarint(b)
	if k <= 0 || l == 0 || l > MaxCIDLen || uint64(len(b)-k) < l {
		return cid.Undef, nil, fmt.Errorf("%w: bad CID length", ErrMalformed)
	}
	raw := b[k : k+int(l)]
	n, c, err := cid.CidFromBytes(raw)
	if err != nil || n != len(raw) {
		return cid.Undef, nil, fmt.Errorf("%w: bad CID", ErrMalformed)
	}
	return c, b[k+int(l):], nil
}

// Reader decodes frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r       *bufio.Reader
	allowed func(Type) bool
	ctl     []byte
}

// NewReader returns a Reader on r that accepts only the message types for
// which allowed returns true (all known types if allowed is nil); any other
// type is reported as ErrUnknownType before its body is read.
func NewReader(r io.Reader, allowed func(Type) bool) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), allowed: allowed}
}

// Read decodes the next frame. Errors that wrap ErrProtocol mean the peer
// broke the protocol; others come from the underlying reader (io.EOF at a
// frame boundary means the peer closed cleanly). The Data of a Block message
// is a pooled buffer: release it with PutBuffer.
func (r *Reader) Read() (Message, error) {
	size, err := readUvarint(r.r)
	if err != nil {
		return Message{}, err
	}
	if size == 0 {
		return Message{}, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if size > MaxFrameSize {
		return Message{}, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, size)
	}
	tb, err := r.r.ReadByte()
	if err != nil {
		return Message{}, unexpected(err)
	}
	t := Type(tb)
	switch t {
	case TypeWant, TypeCancel, TypeBlock, TypeDontHave:
	default:
		return Message{}, fmt.Errorf("%w %d", ErrUnknownType, tb)
	}
	if r.allowed != nil && !r.allowed(t) {
		return Message{}, fmt.Errorf("%w: %s not expected here", ErrUnknownType, t)
	}
	if t == TypeBlock {
		return r.readBlock(int(size) - 1)
	}
	if size > MaxControlSize {
		return Message{}, fmt.Errorf("%w: %s frame of %d bytes", ErrFrameTooLarge, t, size)
	}
	if cap(r.ctl) < int(size) {
		r.ctl = make([]byte, size, max(int(size), 4096))
	}
	body := r.ctl[:size]
	body[0] = tb
	if _, err := io.ReadFull(r.r, body[1:]); err != nil {
		return Message{}, unexpected(err)
	}
	return DecodeControl(body)
}

func (r *Reader) readBlock(rest int) (Message, error) {
	l, err := readUvarint(r.r)
	if err != nil {
		return Message{}, unexpected(err)
	}
	hl := uvarintLen(l)
	if l == 0 || l > MaxCIDLen || int(l)+hl > rest {
		return Message{}, fmt.Errorf("%w: bad CID length", ErrMalformed)
	}
	var cb [MaxCIDLen]byte
	if _, err := io.ReadFull(r.r, cb[:l]); err != nil {
		return Message{}, unexpected(err)
	}
	n, c, err := cid.CidFromBytes(cb[:l])
	if err != nil || n != int(l) {
		return Message{}, fmt.Errorf("%w: bad CID", ErrMalformed)
	}
	dl := rest - hl - int(l)
	if dl > MaxBlockSize {
		return Message{}, fmt.Errorf("%w: block of %d bytes", ErrFrameTooLarge, dl)
	}
	data := GetBuffer(dl)
	if _, err := io.ReadFull(r.r, data); err != nil {
		PutBuffer(data)
		return Message{}, unexpected(err)
	}
	return Message{Type: TypeBlock, CID: c, Data: data}, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readUvarint reads a uvarint of at most 4 bytes (enough for any frame
// length): a longer one is ErrFrameTooLarge. io.EOF before the first byte is
// returned as is, a cut varint as io.ErrUnexpectedEOF.
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 {
				return 0, unexpected(err)
			}
			return 0, err
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: length prefix over 4 bytes", ErrFrameTooLarge)
}
