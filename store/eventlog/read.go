package eventlog

import (
	"errors"
	"fmt"
	"io"
)

// readBufSize is the window for sequential reads. It holds the largest record with room to spare,
// so every refill reads at least MaxRecordSize bytes.
const readBufSize = 2 * (recordHeaderSize + MaxRecordSize)

// badRecord reports the first record in a range that does not decode.
type badRecord struct {
	off int64
	err error // io.ErrUnexpectedEOF, or wraps ErrCorrupt
}

func (e *badRecord) Error() string { return fmt.Sprintf("record at offset %d: %v", e.off, e.err) }
func (e *badRecord) Unwrap() error { return e.err }

// reason names what is wrong with a bad record, for Recovery and CorruptError.
func (e *badRecord) reason() string {
	if errors.Is(e.err, io.ErrUnexpectedEOF) {
		return "torn record"
	}
	var d decodeError
	if errors.As(e.err, &d) {
		return string(d)
	}
	return e.err.Error()
}

// scanRange calls fn for each record in [from, end) of r, in order, reading through one large
// buffer. At the first record that does not decode (including one cut short by end) it returns a
// *badRecord. fn's error is returned as it is. rec is valid only during the call to fn.
func scanRange(r io.ReaderAt, from, end int64, fn func(off int64, rec []byte) error) error {
	buf := make([]byte, min(readBufSize, max(end-from, 0)))
	var data []byte // unconsumed bytes, starting at file offset off
	off, filled := from, from
	for off < end {
		rec, n, err := DecodeRecord(data)
		if errors.Is(err, io.ErrUnexpectedEOF) && filled < end {
			k := copy(buf, data)
			m := int(min(int64(len(buf)-k), end-filled))
			if err := readFull(r, buf[k:k+m], filled); err != nil {
				return err
			}
			filled += int64(m)
			data = buf[:k+m]
			continue
		}
		if err != nil {
			return &badRecord{off: off, err: err}
		}
		if err := fn(off, rec); err != nil {
			return err
		}
		data = data[n:]
		off += int64(n)
	}
	return nil
}

// findRecord reports the offset of the first position in [from, end) of r where a whole
// well-formed record starts. It tries every byte offset; a wrong candidate is almost always
// rejected by its length field alone, so the cost is about one read of the range.
func findRecord(r io.ReaderAt, from, end int64) (int64, bool, error) {
	buf := make([]byte, min(readBufSize, max(end-from, 0)))
	var data []byte // bytes from file offset p on
	p, filled := from, from
	for p < end {
		_, _, err := DecodeRecord(data)
		if err == nil {
			return p, true, nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) && filled < end {
			k := copy(buf, data)
			m := int(min(int64(len(buf)-k), end-filled))
			if err := readFull(r, buf[k:k+m], filled); err != nil {
				return 0, false, err
			}
			filled += int64(m)
			data = buf[:k+m]
			continue
		}
		p++
		data = data[1:]
	}
	return 0, false, nil
}

// readFull reads exactly len(b) bytes at off. A file shorter than expected is an error here: the
// callers only read below an end they know.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading at offset %d: %w", off, err)
}
