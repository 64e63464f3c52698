package graph

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/shm"
)

// Heap is one process's view of a region's graph objects and type tables.
// It is safe for concurrent use; Of returns the same Heap for a region.
type Heap struct {
	r      *shm.Region
	tables sync.Map // table offset → *Table (tables never change once stored)
	// lo and top are the heap's used part as last read from the region
	// (it only grows): ptr checks offsets against them without touching
	// the shared header, and rereads top only for an offset beyond it.
	lo  uint64
	top atomic.Uint64
}

var heaps sync.Map // *shm.Region → *Heap

// Of returns the Heap of region r.
func Of(r *shm.Region) *Heap {
	if h, ok := heaps.Load(r); ok {
		return h.(*Heap)
	}
	nh := &Heap{r: r}
	var top uint64
	nh.lo, top = r.HeapBounds()
	nh.top.Store(top)
	h, _ := heaps.LoadOrStore(r, nh)
	return h.(*Heap)
}

// Region is the heap's region.
func (h *Heap) Region() *shm.Region { return h.r }

// StoreTable validates tb and writes it to the region; the offset names it
// from then on (in map descriptors, program records, object headers).
func (h *Heap) StoreTable(tb *Table) (uint64, error) {
	if err := tb.Validate(); err != nil {
		return 0, err
	}
	enc := tb.encode()
	off, err := h.r.Alloc(uint64(len(enc)))
	if err != nil {
		return 0, fmt.Errorf("store graph type table: %w", err)
	}
	b, err := h.r.Bytes(off, uint64(len(enc)))
	if err != nil {
		return 0, err
	}
	copy(b, enc)
	return off, nil
}

// Table reads (once per process) and validates the table stored at off.
func (h *Heap) Table(off uint64) (*Table, error) {
	if t, ok := h.tables.Load(off); ok {
		return t.(*Table), nil
	}
	hdr, err := h.r.Bytes(off, tableHeader)
	if err != nil {
		return nil, fmt.Errorf("%w: type table at %#x: %v", ErrCorrupt, off, err)
	}
	n := uint64(tableHeader)
	if le := hdr; len(le) == tableHeader {
		nt := uint64(uint32(le[8]) | uint32(le[9])<<8 | uint32(le[10])<<16 | uint32(le[11])<<24)
		nf := uint64(uint32(le[12]) | uint32(le[13])<<8 | uint32(le[14])<<16 | uint32(le[15])<<24)
		if nt > maxTypes || nf > maxTypes*maxFields {
			return nil, fmt.Errorf("%w: type table at %#x: %d types, %d fields", ErrCorrupt, off, nt, nf)
		}
		n += tableRecord * (nt + nf)
	}
	b, err := h.r.Bytes(off, n)
	if err != nil {
		return nil, fmt.Errorf("%w: type table at %#x: %v", ErrCorrupt, off, err)
	}
	tb, err := decodeTable(b)
	if err != nil {
		return nil, fmt.Errorf("type table at %#x: %w", off, err)
	}
	t, _ := h.tables.LoadOrStore(off, tb)
	return t.(*Table), nil
}

// ptr checks that [off, off+n) is 8-aligned heap memory and returns it.
// It panics with a corruption (recovered by the exported callers).
func (h *Heap) ptr(off, n uint64, what string) unsafe.Pointer {
	if off == 0 || off%8 != 0 {
		corrupt("%s at offset %#x", what, off)
	}
	if top := h.top.Load(); off >= h.lo && n <= top && off <= top-n {
		return h.r.Pointer(off)
	}
	if _, top := h.r.HeapBounds(); top > h.top.Load() {
		h.top.Store(top) // another process grew the heap: a later offset may be fine
	}
	b, err := h.r.Bytes(off, n)
	if err != nil {
		corrupt("%s at offset %#x: %v", what, off, err)
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// Offset converts an address in this process's mapping of the region to
// a region offset; ok is false for addresses outside the heap.
func (h *Heap) Offset(addr uintptr, n uint64) (uint64, bool) {
	base := uintptr(h.r.Pointer(0))
	if addr < base {
		return 0, false
	}
	off := uint64(addr - base)
	if _, err := h.r.Bytes(off, n); err != nil {
		return 0, false
	}
	return off, true
}

// Addr is the address of region offset off in this process.
func (h *Heap) Addr(off uint64) uintptr { return uintptr(h.r.Pointer(off)) }
