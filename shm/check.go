package shm

import (
	"fmt"
	"sync/atomic"
)

// Report is the result of Check: how the heap's spans are used and what the
// free lists hold.
type Report struct {
	Spans        uint64             // spans in the heap (Brk)
	ClassSpans   [numClasses]uint64 // spans carved into blocks, per class
	RunSpans     uint64             // spans in runs
	Unpublished  uint64             // spans reserved but never described: leaked by a process killed in between
	FreeBlocks   [numClasses]uint64 // blocks on each class's free list
	FreshBlocks  [numClasses]uint64 // blocks of each class's carving span not yet handed out
	FreeRunSpans uint64             // spans in runs on the run free lists
	Problems     []string           // broken invariants; empty when the region is sound
}

// FreeBytes is the space on the free lists and not yet carved.
func (rep *Report) FreeBytes() uint64 {
	n := rep.FreeRunSpans * SpanSize
	for c, b := range rep.FreeBlocks {
		n += (b + rep.FreshBlocks[c]) * classSize(c)
	}
	return n
}

// Check walks the span table and every free list and verifies the
// allocator's invariants:
//
//   - every free-list entry is the start of a block of the list's class (or
//     a run of the list's length) inside the heap;
//   - no list has a cycle and no block is on a list twice;
//   - every run tail follows a run head;
//   - each class's carving cursor points into a span of that class, and no
//     block past the cursor (never handed out) is on a free list.
//
// Leaks are not problems: a process killed mid-allocation leaks at most a
// block (or, right after reserving fresh spans, those spans, counted as
// Unpublished). Check reads lists
// that other processes may be changing; run it on a quiescent region for an
// exact answer.
func (r *Region) Check() Report {
	var rep Report
	brk := r.brk()
	rep.Spans = brk
	// A carving span may not be described yet (its installer died first):
	// the cursor says which class it belongs to.
	carving := make(map[uint64]int)
	var cursors [numClasses]uint64
	for c := 0; c < numClasses; c++ {
		off := r.hdr.Carve[c].Load()
		if off == 0 {
			continue
		}
		s, ok := r.carvingSpan(off, c)
		if !ok {
			rep.Problems = append(rep.Problems, fmt.Sprintf("class %d carving cursor %#x is not a block of the class", classSize(c), off))
			continue
		}
		carving[s], cursors[c] = c, off
		rep.FreshBlocks[c] = (SpanSize - (off-r.hdrCopy.heapOff)%SpanSize) / classSize(c)
	}
	for s := uint64(0); s < brk; s++ {
		k := r.spanKind(s)
		if c, ok := carving[s]; ok && k == spanUnknown {
			k = spanClassTag + byte(c)
		}
		switch {
		case k == spanRunHead:
			n := r.runLength(r.hdrCopy.heapOff + s*SpanSize)
			rep.RunSpans += n
			s += n - 1
		case k == spanRunTail:
			rep.Unpublished++ // a tail whose head was never written
		case k >= spanClassTag && k < spanClassTag+numClasses:
			rep.ClassSpans[k-spanClassTag]++
		case k == spanUnknown:
			rep.Unpublished++
		default:
			rep.Problems = append(rep.Problems, fmt.Sprintf("span %d: unknown span-table entry %#x", s, k))
		}
	}
	seen := make(map[uint64]bool)
	for c := 0; c < numClasses; c++ {
		limit := rep.ClassSpans[c]*(SpanSize/classSize(c)) + 1
		fresh := func(off uint64) bool { // past the cursor in the carving span
			cur := cursors[c]
			return cur != 0 && off >= cur && (off-r.hdrCopy.heapOff)/SpanSize == (cur-r.hdrCopy.heapOff)/SpanSize
		}
		rep.FreeBlocks[c] = r.walk(&r.hdr.ClassHead[c].v, limit, seen, &rep,
			fmt.Sprintf("class %d", classSize(c)), func(off uint64) bool { return r.blockOf(off, c) && !fresh(off) })
	}
	for i := range r.hdr.RunHead {
		n := uint64(i + 1)
		if i >= exactRuns {
			n = 1 << (i - exactRuns + 6)
		}
		runs := r.walk(&r.hdr.RunHead[i], rep.RunSpans/n+1, seen, &rep,
			fmt.Sprintf("runs of %d spans", n), func(off uint64) bool { return r.runOf(off, n) })
		rep.FreeRunSpans += runs * n
	}
	return rep
}

// walk follows one free list, checking each entry with valid, and returns
// its length. It stops after limit entries (more would mean a cycle).
func (r *Region) walk(head *atomic.Uint64, limit uint64, seen map[uint64]bool, rep *Report, what string, valid func(uint64) bool) uint64 {
	n := uint64(0)
	for off := head.Load() & offMask; off != 0; off = r.link(off).Load() {
		switch {
		case !valid(off):
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s free list: entry %#x is not a block of the list", what, off))
			return n
		case seen[off]:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s free list: block %#x listed twice (cycle or double free)", what, off))
			return n
		case n >= limit:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s free list: longer than the blocks that exist", what))
			return n
		}
		seen[off] = true
		n++
	}
	return n
}
