package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	// MaxRecordSize is the largest payload a record may carry. A larger length field is corruption.
	MaxRecordSize = 1 << 20
	// HeaderSize is the size of the file header, and so the offset of the first record.
	HeaderSize = 8
	// recordHeaderSize is the length and checksum in front of every payload.
	recordHeaderSize = 8
)

// magic is the file header: "PEERLOG" and format version 1.
const magic = "PEERLOG\x01"

var (
	// ErrCorrupt marks a log or record that is damaged (not merely cut short at the end).
	ErrCorrupt = errors.New("event log corrupt")
	// ErrClosed is returned by operations on a closed Log.
	ErrClosed = errors.New("event log closed")
)

// CorruptError says where a log is damaged and how. It wraps ErrCorrupt.
type CorruptError struct {
	Offset int64  // byte offset of the bad record (or 0 for the file header)
	Reason string // what is wrong there
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v at offset %d: %s", ErrCorrupt, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// decodeError is what DecodeRecord returns for a damaged record: the reason, wrapping ErrCorrupt.
type decodeError string

func (e decodeError) Error() string { return ErrCorrupt.Error() + ": " + string(e) }
func (e decodeError) Unwrap() error { return ErrCorrupt }

// castagnoli is the CRC-32C table; hash/crc32 uses the SSE4.2/ARMv8 instructions for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(lenBytes, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, lenBytes), castagnoli, payload)
}

// AppendRecord appends the encoding of payload to dst and returns the extended slice. The caller
// must keep payload within MaxRecordSize; Append checks it.
func AppendRecord(dst, payload []byte) []byte {
	var h [recordHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], checksum(h[0:4], payload))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// DecodeRecord parses the record at the start of b and returns its payload (a subslice of b,
// capacity-limited) and the number of bytes it occupies. The error is io.ErrUnexpectedEOF when b
// is too short to hold the whole record, and wraps ErrCorrupt for a bad length or checksum.
func DecodeRecord(b []byte) (rec []byte, n int, err error) {
	if len(b) < recordHeaderSize {
		return nil, 0, io.ErrUnexpectedEOF
	}
	size := binary.LittleEndian.Uint32(b[0:4])
	if size > MaxRecordSize {
		return nil, 0, decodeError(fmt.Sprintf("record length %d exceeds maximum %d", size, MaxRecordSize))
	}
	n = recordHeaderSize + int(size)
	if len(b) < n {
		return nil, 0, io.ErrUnexpectedEOF
	}
	rec = b[recordHeaderSize:n:n]
	if checksum(b[0:4], rec) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, decodeError("checksum mismatch")
	}
	return rec, n, nil
}
