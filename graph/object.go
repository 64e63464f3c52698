package graph

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// An object (bpf_obj_new) is one region block: a header, then the
// object's bytes, which the program sees. Object offsets name the first
// byte after the header.
//
//	-24 Magic u32   "UGOB" while the object lives, 0 once freed
//	-20 Type u32    the object's type: an index into Table
//	-16 Table u64   offset of the type table that describes it
//	-8  Refs u32    owning references: the program's and the containers'
//	                (bpf_refcount types count several; others have 1)
//	-4  Size u32    the type's size, a copy checked against the table
//	0   the object  Size bytes, zeroed at allocation
//
// The header lies outside what the program may touch, so a program cannot
// forge its type or reference count.
type objHeader struct {
	Magic atomic.Uint32
	Type  uint32
	Table uint64
	Refs  atomic.Uint32
	Size  uint32
}

const (
	objMagic   = 0x424f4755
	headerSize = 24
)

var _ [headerSize - unsafe.Sizeof(objHeader{})]byte

// Object is a live object as a heap sees it.
type Object struct {
	Off   uint64 // offset of the object's first byte
	Table uint64 // its type table
	Type  *Type  // its type
}

func (h *Heap) header(off uint64) *objHeader {
	if off < headerSize {
		corrupt("object at offset %#x", off)
	}
	return (*objHeader)(h.ptr(off-headerSize, headerSize, "object header"))
}

// object validates the object at off: a live header whose type is in its
// table and whose size matches; want, if non-zero, is the size the caller
// expects (the element type of the container it came from).
func (h *Heap) object(off uint64, want uint32) Object {
	hd := h.header(off)
	if hd.Magic.Load() != objMagic {
		corrupt("object at %#x: no live object header", off)
	}
	tb, err := h.Table(hd.Table)
	if err != nil {
		panic(corruption{err})
	}
	if int(hd.Type) >= len(tb.Types) || tb.Types[hd.Type].Size != hd.Size || want != 0 && hd.Size != want {
		corrupt("object at %#x: type %d of size %d (want size %d)", off, hd.Type, hd.Size, want)
	}
	h.ptr(off, uint64(hd.Size), "object")
	return Object{Off: off, Table: hd.Table, Type: &tb.Types[hd.Type]}
}

// Object validates the object at offset off and describes it.
func (h *Heap) Object(off uint64) (o Object, err error) {
	defer catch(&err)
	return h.object(off, 0), nil
}

// New allocates a zeroed object of type typ of the table at table, holding
// one reference (the caller's). It returns the object's offset.
func (h *Heap) New(table uint64, typ uint32) (uint64, error) {
	tb, err := h.Table(table)
	if err != nil {
		return 0, err
	}
	if int(typ) >= len(tb.Types) {
		return 0, fmt.Errorf("bpf_obj_new: type %d is not in the program's type table (%d types)", typ, len(tb.Types))
	}
	t := &tb.Types[typ]
	blk, err := h.r.Alloc(headerSize + uint64(t.Size))
	if err != nil {
		return 0, err
	}
	hd := (*objHeader)(h.r.Pointer(blk))
	hd.Type, hd.Table, hd.Size = typ, table, t.Size
	hd.Refs.Store(1)
	hd.Magic.Store(objMagic)
	return blk + headerSize, nil
}

// Acquire takes one more reference on a refcounted object
// (bpf_refcount_acquire). It fails (false) if the count already reached
// zero, and for types without a bpf_refcount (the verifier's business; at
// run time the reference would be a second owner of a single-owner
// object).
func (h *Heap) Acquire(off uint64) (ok bool, err error) {
	defer catch(&err)
	o := h.object(off, 0)
	if _, rc := o.Type.Refcount(); !rc {
		return false, fmt.Errorf("bpf_refcount_acquire: object at %#x has no bpf_refcount", off)
	}
	refs := &h.header(off).Refs
	for {
		n := refs.Load()
		if n == 0 {
			return false, nil
		}
		if refs.CompareAndSwap(n, n+1) {
			return true, nil
		}
	}
}

// Drop releases one reference (bpf_obj_drop); the last one drains the
// containers the object holds (recursively) and frees it.
func (h *Heap) Drop(off uint64) (err error) {
	defer catch(&err)
	h.drop(off, 0)
	return nil
}

func (h *Heap) drop(off uint64, want uint32) {
	o := h.object(off, want)
	hd := h.header(off)
	for {
		n := hd.Refs.Load()
		if n == 0 {
			corrupt("object at %#x: dropped with no reference left", off)
		}
		if hd.Refs.CompareAndSwap(n, n-1) {
			if n > 1 {
				return
			}
			break
		}
	}
	tb, _ := h.Table(o.Table)
	for _, f := range o.Type.Roots() {
		// Nobody else can reach the object now: no lock to take.
		h.drainRoot(tb, f, off+uint64(f.Off))
	}
	if !hd.Magic.CompareAndSwap(objMagic, 0) {
		corrupt("object at %#x: freed twice", off)
	}
	if err := h.r.Free(off - headerSize); err != nil {
		corrupt("object at %#x: %v", off, err)
	}
}
