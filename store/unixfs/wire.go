package unixfs

import (
	"encoding/binary"
	"errors"
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var (
	errTruncated  = errors.New("truncated input")
	errOverflow   = errors.New("varint overflows 64 bits")
	errNonMinimal = errors.New("varint not minimally encoded")
)

// readUvarint decodes a minimally encoded protobuf varint from the start of b.
func readUvarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0, errOverflow
		}
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errNonMinimal
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errTruncated
}

// readTag decodes a field tag and checks the field number is valid.
func readTag(b []byte) (field uint64, wire uint64, n int, err error) {
	t, n, err := readUvarint(b)
	if err != nil {
		return 0, 0, 0, err
	}
	field, wire = t>>3, t&7
	if field == 0 || field > 1<<29-1 {
		return 0, 0, 0, errors.New("invalid field number")
	}
	return field, wire, n, nil
}

// readBytes decodes a length-prefixed byte string from the start of b. The
// result aliases b.
func readBytes(b []byte) ([]byte, int, error) {
	l, n, err := readUvarint(b)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(b)-n) {
		return nil, 0, errTruncated
	}
	end := n + int(l)
	return b[n:end:end], end, nil
}

// skipField skips the value of a field of the given wire type.
func skipField(b []byte, wire uint64) (int, error) {
	switch wire {
	case wireVarint:
		_, n, err := readUvarint(b)
		return n, err
	case wireFixed64:
		if len(b) < 8 {
			return 0, errTruncated
		}
		return 8, nil
	case wireBytes:
		_, n, err := readBytes(b)
		return n, err
	case wireFixed32:
		if len(b) < 4 {
			return 0, errTruncated
		}
		return 4, nil
	default:
		return 0, errors.New("unsupported wire type")
	}
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
