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
// attached process. A process killed inside Alloc leaks at most that block
// (or, killed just after reserving a fresh span, that span, which Check
// reports as unpublished).
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
			return r.carve(c)
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
			crashPoint(sitePopped)
			r.self.AllocInflight.Store(off)
			clear(unsafe.Slice((*byte)(unsafe.Add(r.base, off)), classSize(c)))
			crashPoint(siteInflight)
			r.self.AllocInflight.CompareAndSwap(off, 0) // not Store: never erase another goroutine's record
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
		crashPoint(sitePushLinked)
		if head.CompareAndSwap(h, nextHead(h, first)) {
			return
		}
	}
}

// carve hands out the next never-used block of class c. Each class has a
// carving span whose blocks are handed out in address order; the header's
// cursor Carve[c] holds the offset of its next unused block (0: none, or
// used up). Taking a block is one CAS that advances the cursor; starting a
// span is one CAS that points the cursor into a span just reserved. Fresh
// blocks are new file space, already zero.
//
// A process killed anywhere here leaks at most the block it was taking: a
// span reserved but not installed is not described in the span table
// (Check counts it as unpublished), and a span installed but not yet
// described is described by whoever takes its next block (and counted by
// Check from the cursor). Nothing is ever reachable only through a step a
// dead process did not finish.
func (r *Region) carve(c int) (uint64, error) {
	cursor := &r.hdr.Carve[c]
	size := classSize(c)
	heap := r.hdrCopy.heapOff
	for {
		off := cursor.Load()
		if off != 0 {
			s, ok := r.carvingSpan(off, c)
			if !ok {
				if cursor.Load() != off {
					continue
				}
				return 0, r.corrupt("class %d carving cursor %#x", size, off)
			}
			// The installer may have died before describing the span.
			r.setSpanKind(s, spanClassTag+byte(c))
			next := off + size
			if (next-heap)%SpanSize == 0 {
				next = 0
			}
			if cursor.CompareAndSwap(off, next) {
				return off, nil
			}
			continue
		}
		s, err := r.reserveSpans(1)
		if err != nil {
			return 0, err
		}
		crashPoint(siteCarveReserved)
		base := heap + s*SpanSize
		if cursor.CompareAndSwap(0, base+size) {
			crashPoint(siteCarveInstalled)
			r.setSpanKind(s, spanClassTag+byte(c))
			return base, nil
		}
		// Another process installed a span first. Ours becomes a free run
		// of one span (a kill between these two steps leaks it: one block).
		r.setSpanKind(s, spanRunHead)
		crashPoint(siteSpareDescribed)
		r.push(&r.hdr.RunHead[runList(1)], base, base)
	}
}

// carvingSpan checks that off can be class c's carving cursor: a block
// start of the class inside the heap's used part, past the first block of
// its span, in a span of the class or not yet described. It returns the
// span's index.
func (r *Region) carvingSpan(off uint64, c int) (uint64, bool) {
	kind, ok := r.spanKindAt(off)
	rel := off - r.hdrCopy.heapOff
	if !ok || rel%classSize(c) != 0 || rel%SpanSize == 0 ||
		kind != spanUnknown && kind != spanClassTag+byte(c) {
		return 0, false
	}
	return rel / SpanSize, true
}

// allocRun returns a zeroed run of at least n spans.
func (r *Region) allocRun(n uint64) (uint64, error) {
	n = runSpans(n)
	if n > r.hdrCopy.maxSpans {
		r.hdr.Counters[CounterFullErrors].Add(1)
		return 0, pathErr("grow", r.path, detail(ErrRegionFull, "a run of %d spans exceeds the size limit of %d bytes", n, r.hdrCopy.limit))
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
			crashPoint(sitePopped)
			r.self.AllocInflight.Store(off)
			clear(unsafe.Slice((*byte)(unsafe.Add(r.base, off)), n*SpanSize))
			crashPoint(siteInflight)
			r.self.AllocInflight.CompareAndSwap(off, 0) // not Store: never erase another goroutine's record
			return off, nil
		}
	}
	s, err := r.reserveSpans(n)
	if err != nil {
		return 0, err
	}
	crashPoint(siteRunReserved)
	// Tails first, head last: a crash in between leaves tails without a
	// head, which Check reports as unpublished spans. The run is recorded
	// in flight before its head is written, so a crash after that frees it
	// in the reaper, like a block popped from a list.
	off := r.hdrCopy.heapOff + s*SpanSize
	r.self.AllocInflight.Store(off)
	for i := uint64(1); i < n; i++ {
		r.setSpanKind(s+i, spanRunTail)
	}
	r.setSpanKind(s, spanRunHead)
	crashPoint(siteRunDescribed)
	// CAS, not Store: never erase another goroutine's record.
	r.self.AllocInflight.CompareAndSwap(off, 0)
	return off, nil // fresh file space is zero
}

// runLength counts the spans of the run starting at off.
func (r *Region) runLength(off uint64) uint64 {
	s := (off - r.hdrCopy.heapOff) / SpanSize
	brk := r.brk()
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
