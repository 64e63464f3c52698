package shm

import "math/bits"

// Size classes. Blocks of a class are carved from one span at a time, so a
// class's block size divides SpanSize and every block of class ≥ 4096 is
// page-aligned. Larger requests get a run of whole spans.
const (
	minClassShift = 4  // 16 bytes
	maxClassShift = 15 // 32 KiB
	numClasses    = maxClassShift - minClassShift + 1
	// MaxClassSize is the largest size served from a size class.
	MaxClassSize = 1 << maxClassShift

	// Runs of up to exactRuns spans have a free list each; longer runs are
	// rounded up to a power of two spans, one free list per power.
	exactRuns   = 32
	numRunLists = exactRuns + 20 // up to 2^(5+20) spans: past any MaxLimit
)

// Span-table entries: one byte per heap span.
const (
	spanUnknown  = 0    // never described: not yet carved, or leaked mid-carve
	spanRunHead  = 0x80 // first span of a run
	spanRunTail  = 0x81 // later span of a run
	spanClassTag = 0x01 // class c is stored as spanClassTag + c
)

// classOf returns the size class serving size bytes (1 ≤ size ≤ MaxClassSize).
func classOf(size uint64) int {
	if size <= 1<<minClassShift {
		return 0
	}
	return bits.Len64(size-1) - minClassShift
}

// classSize is the block size of class c.
func classSize(c int) uint64 { return 1 << (c + minClassShift) }

// runSpans rounds a run length (in spans) up to what its free list holds.
func runSpans(n uint64) uint64 {
	if n <= exactRuns {
		return n
	}
	return 1 << bits.Len64(n-1)
}

// runList returns the free list of runs of n spans (n as rounded by runSpans).
func runList(n uint64) int {
	if n <= exactRuns {
		return int(n - 1)
	}
	return exactRuns + bits.Len64(n-1) - 6 // 64 → 32, 128 → 33, …
}
