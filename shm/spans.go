package shm

import (
	"sync/atomic"
	"unsafe"
)

// brk is the number of spans handed out to the heap, bounded by the
// span table's size: Brk is shared memory, and whatever another process
// writes there must not send this one outside its mapping.
func (r *Region) brk() uint64 { return min(r.hdr.Brk.Load(), r.hdrCopy.maxSpans) }

// spanKind reads span s's entry in the span table.
func (r *Region) spanKind(s uint64) byte {
	return *(*byte)(unsafe.Add(r.base, r.hdrCopy.spanOff+s))
}

// setSpanKind writes span s's entry. The entry is published to other
// processes by the compare-and-swap that later hands the span out.
func (r *Region) setSpanKind(s uint64, k byte) {
	*(*byte)(unsafe.Add(r.base, r.hdrCopy.spanOff+s)) = k
}

// spanKindAt returns the span-table entry of the span holding off, and false
// if off is outside the heap's used part.
func (r *Region) spanKindAt(off uint64) (byte, bool) {
	if off < r.hdrCopy.heapOff {
		return 0, false
	}
	s := (off - r.hdrCopy.heapOff) / SpanSize
	if s >= r.brk() {
		return 0, false
	}
	return r.spanKind(s), true
}

// reserveSpans hands out n fresh spans from the top of the heap and returns
// the index of the first. The file is backed up to the new top before the
// top moves, so no process can ever touch unbacked region memory (which
// would be SIGBUS).
func (r *Region) reserveSpans(n uint64) (uint64, error) {
	for {
		b := r.hdr.Brk.Load()
		if b+n > r.hdrCopy.maxSpans {
			r.hdr.Counters[CounterFullErrors].Add(1)
			return 0, pathErr("grow", r.path, detail(ErrRegionFull,
				"%d more bytes would pass the size limit of %d bytes", n*SpanSize, r.hdrCopy.limit))
		}
		top := r.hdrCopy.heapOff + (b+n)*SpanSize
		if err := r.ensureBacked(top); err != nil {
			r.hdr.Counters[CounterFullErrors].Add(1)
			return 0, err
		}
		if r.hdr.Brk.CompareAndSwap(b, b+n) {
			return b, nil
		}
	}
}

// maxStore raises w to v if it is lower.
func maxStore(w *atomic.Uint64, v uint64) {
	for {
		old := w.Load()
		if old >= v || w.CompareAndSwap(old, v) {
			return
		}
	}
}
