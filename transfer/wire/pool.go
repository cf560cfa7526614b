package wire

import (
	"math/bits"
	"sync"
)

// Buffers come in power-of-two classes from 4 KiB to MaxBlockSize so a
// returned buffer always fits the next block of its class.
const (
	minClassShift = 12
	maxClassShift = 21 // MaxBlockSize
)

var pools [maxClassShift - minClassShift + 1]sync.Pool

func class(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// GetBuffer returns a buffer of length n (at most MaxBlockSize), from the
// pool when one is free. Its contents are undefined.
func GetBuffer(n int) []byte {
	if n < 0 || n > MaxBlockSize {
		panic("wire: buffer size out of range")
	}
	c := class(n)
	if p, ok := pools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+minClassShift))
}

// PutBuffer returns a buffer obtained from GetBuffer (or Reader.Read) to the
// pool. The caller must not use b afterwards. Buffers of foreign capacity
// are dropped.
func PutBuffer(b []byte) {
	c := cap(b)
	if c < 1<<minClassShift || c > MaxBlockSize || c&(c-1) != 0 {
		return
	}
	b = b[:0]
	pools[bits.Len(uint(c))-1-minClassShift].Put(&b)
}
