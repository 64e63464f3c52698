package shm

import (
	"sync/atomic"
	"unsafe"
)

// A free block's first 8 bytes hold the offset of the next free block of
// its list (0 ends the list). Nothing else is stored in free blocks.
func (r *Region) link(off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(r.base, off))
}

// Alloc returns the offset of a zeroed block of at least size bytes.
// Blocks up to MaxClassSize come from size classes; larger ones are runs of
// whole spans (64 KiB aligned). Alloc is safe from any goroutine of any
// attached process. A process killed inside Alloc leaks at most that block.
func (r *Region) Alloc(size uint64) (uint64, error) {
	switch {
	case r.closed.Load():
		return 0, ErrClosed
	case size == 0:
		return 0, detail(ErrInvalid, "allocation of 0 bytes")
	case size > MaxClassSize:
		return r.allocRun((size + SpanSize - 1) / SpanSize)
	}
	c := classOf(size)
	head := &r.hdr.ClassHead[c].v
	for {
		h := head.Load()
		off := h & offMask
		if off == 0 {
			if err := r.carve(c); err != nil {
				return 0, err
			}
			continue
		}
		if !r.blockOf(off, c) {
			return 0, r.corrupt("class %d free list: block %#x", classSize(c), off)
		}
		next := r.link(off).Load()
		if next != 0 && !r.blockOf(next, c) {
			if head.Load() == h { // not a race: the list itself is broken
				return 0, r.corrupt("class %d free list: block %#x links to %#x", classSize(c), off, next)
			}
			continue
		}
		if head.CompareAndSwap(h, nextHead(h, next)) {
			r.self.AllocInflight.Store(off)
			clear(unsafe.Slice((*byte)(unsafe.Add(r.base, off)), classSize(c)))
			r.self.AllocInflight.Store(0)
			return off, nil
		}
	}
}

// Free returns a block obtained from Alloc. The block's size is known from
// the span table. Freeing an offset that is not the start of a block is
// refused with ErrInvalid; double frees are not detected here (Check finds
// them).
func (r *Region) Free(off uint64) error {
	if r.closed.Load() {
		return ErrClosed
	}
	kind, ok := r.spanKindAt(off)
	if !ok {
		return detail(ErrInvalid, "free of %#x: not in the heap", off)
	}
	switch {
	case kind >= spanClassTag && kind < spanClassTag+numClasses:
		c := int(kind - spanClassTag)
		if (off-r.hdrCopy.heapOff)%classSize(c) != 0 {
			return detail(ErrInvalid, "free of %#x: not the start of a %d-byte block", off, classSize(c))
		}
		r.push(&r.hdr.ClassHead[c].v, off, off)
		return nil
	case kind == spanRunHead && (off-r.hdrCopy.heapOff)%SpanSize == 0:
		n := r.runLength(off)
		r.push(&r.hdr.RunHead[runList(n)], off, off)
		return nil
	}
	return detail(ErrInvalid, "free of %#x: not the start of an allocated block", off)
}

// push links the chain first..last (already linked internally) onto head.
func (r *Region) push(head *atomic.Uint64, first, last uint64) {
	for {
		h := head.Load()
		r.link(last).Store(h & offMask)
		if head.CompareAndSwap(h, nextHead(h, first)) {
			return
		}
	}
}

// carve takes a fresh span for class c, links its blocks into a chain and
// pushes the chain with one CAS. A crash before that CAS leaks the span
// (Check reports it as unpublished); the lists are never touched.
func (r *Region) carve(c int) error {
	s, err := r.reserveSpans(1)
	if err != nil {
		return err
	}
	base := r.hdrCopy.heapOff + s*SpanSize
	size := classSize(c)
	last := base + SpanSize - size
	for off := base; off < last; off += size {
		r.link(off).Store(off + size)
	}
	r.setSpanKind(s, spanClassTag+byte(c))
	r.push(&r.hdr.ClassHead[c].v, base, last)
	return nil
}

// allocRun returns a zeroed run of at least n spans.
func (r *Region) allocRun(n uint64) (uint64, error) {
	n = runSpans(n)
	if n > r.hdrCopy.maxSpans {
		r.hdr.Counters[CounterFullErrors].Add(1)
		return 0, detail(ErrRegionFull, "run of %d spans exceeds the region's size limit", n)
	}
	head := &r.hdr.RunHead[runList(n)]
	for {
		h := head.Load()
		off := h & offMask
		if off == 0 {
			break
		}
		if !r.runOf(off, n) {
			return 0, r.corrupt("run list of %d spans: run %#x", n, off)
		}
		next := r.link(off).Load()
		if next != 0 && !r.runOf(next, n) {
			if head.Load() == h {
				return 0, r.corrupt("run list of %d spans: run %#x links to %#x", n, off, next)
			}
			continue
		}
		if head.CompareAndSwap(h, nextHead(h, next)) {
			r.self.AllocInflight.Store(off)
			clear(unsafe.Slice((*byte)(unsafe.Add(r.base, off)), n*SpanSize))
			r.self.AllocInflight.Store(0)
			return off, nil
		}
	}
	s, err := r.reserveSpans(n)
	if err != nil {
		return 0, err
	}
	// Tails first, head last: a crash in between leaves tails without a
	// head, which Check reports as unpublished spans.
	for i := uint64(1); i < n; i++ {
		r.setSpanKind(s+i, spanRunTail)
	}
	r.setSpanKind(s, spanRunHead)
	return r.hdrCopy.heapOff + s*SpanSize, nil // fresh file space is zero
}

// runLength counts the spans of the run starting at off.
func (r *Region) runLength(off uint64) uint64 {
	s := (off - r.hdrCopy.heapOff) / SpanSize
	brk := r.hdr.Brk.Load()
	n := uint64(1)
	for s+n < brk && r.spanKind(s+n) == spanRunTail {
		n++
	}
	return n
}

// blockOf reports whether off is the start of a block of class c.
func (r *Region) blockOf(off uint64, c int) bool {
	kind, ok := r.spanKindAt(off)
	return ok && kind == spanClassTag+byte(c) && (off-r.hdrCopy.heapOff)%classSize(c) == 0
}

// runOf reports whether off is the start of a run of n spans.
func (r *Region) runOf(off uint64, n uint64) bool {
	kind, ok := r.spanKindAt(off)
	return ok && kind == spanRunHead && (off-r.hdrCopy.heapOff)%SpanSize == 0 && r.runLength(off) == n
}

// corrupt builds the error for a broken free list.
func (r *Region) corrupt(format string, args ...any) error {
	return pathErr("use", r.path, detail(ErrCorrupt, format, args...))
}
