package extract

import (
	"math/bits"
	"sync"
)

// bufferPool recycles the buffers small entries are decompressed into, in
// power-of-two size classes from 4 KiB up. Reuse spares the garbage
// collector and the page faults of hundreds of MB of short-lived buffers.
// Safe for concurrent use.
type bufferPool struct {
	classes [48]sync.Pool // class c holds buffers of capacity 4 KiB << c
}

const minBufShift = 12 // 4 KiB

func bufClass(n int64) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len64(uint64(n-1)) - minBufShift
}

// bufSize is the capacity of the buffer get(n) returns.
func bufSize(n int64) int64 { return int64(1) << (bufClass(n) + minBufShift) }

// get returns a buffer of length n.
func (p *bufferPool) get(n int64) []byte {
	c := bufClass(n)
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, int64(1)<<(c+minBufShift))
}

// put returns b to the pool. b must come from get and not be used after.
func (p *bufferPool) put(b []byte) {
	c := bufClass(int64(cap(b)))
	if int64(cap(b)) != int64(1)<<(c+minBufShift) {
		return // not one of ours
	}
	p.classes[c].Put(&b)
}
