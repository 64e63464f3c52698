package maps

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"unsafe"

	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/lock"
)

// mapGraph is what a handle knows about the containers in its values.
type mapGraph struct {
	heap  *graph.Heap
	table *graph.Table // nil: the values hold no containers
	off   uint64       // the table's region offset (desc.Graph)
	roots []graph.Field
	// skip are the bytes copies to and from user space leave alone: the
	// lock word and the roots, sorted by offset.
	skip [][2]uint32
}

// ErrGraph is returned by the container walks for a field that is not a
// container of the value.
var ErrGraph = errors.New("not a bpf_rb_root or bpf_list_head of the value")

// loadGraph reads and validates the descriptor's graph table (another
// process may have written it) against the value.
func (m *Map) loadGraph() error {
	off := m.d.Graph
	if off == 0 {
		return nil
	}
	h := graph.Of(m.region)
	tb, err := h.Table(off)
	if err != nil {
		return err
	}
	vt := &tb.Types[0]
	lock, ok := vt.Lock()
	if vt.Size != m.d.ValueSize || !ok || lock != m.d.LockOff {
		return fmt.Errorf("%w: the graph table does not describe the value", graph.ErrCorrupt)
	}
	g := mapGraph{heap: h, table: tb, off: off, roots: vt.Roots()}
	g.skip = append(g.skip, [2]uint32{lock, lock + 4})
	for _, f := range g.roots {
		g.skip = append(g.skip, [2]uint32{f.Off, f.Off + f.Kind.Size()})
	}
	slices.SortFunc(g.skip, func(a, b [2]uint32) int { return int(a[0]) - int(b[0]) })
	m.g = g
	return nil
}

// freeGraph gives back the table of a map whose creation failed (nothing
// else refers to it yet).
func (m *Map) freeGraph() {
	if m.d.Graph != 0 {
		m.region.Free(m.d.Graph)
		m.d.Graph = 0
	}
}

// GraphTable is the type table of the map's values' containers (Types[0]
// is the value), or nil if the values hold none.
func (m *Map) GraphTable() *graph.Table { return m.g.table }

// GraphTableOffset is the region offset of GraphTable (0 if none).
func (m *Map) GraphTableOffset() uint64 { return m.g.off }

// copySkipping copies value_size bytes from src to dst except the special
// fields (lock and roots), which dst keeps.
func (m *Map) copySkipping(dst, src []byte) {
	at := uint32(0)
	for _, s := range m.g.skip {
		copy(dst[at:s[0]], src[at:s[0]])
		at = s[1]
	}
	copy(dst[at:m.valueSize], src[at:m.valueSize])
}

// valueOff is the region offset of a stored value.
func (m *Map) valueOff(p unsafe.Pointer) uint64 {
	return uint64(uintptr(p) - uintptr(m.region.Pointer(0)))
}

// drainValue empties the containers of the stored value at p, as the
// kernel does when a value goes away or is overwritten: under the value's
// lock each root is detached (left empty), then, with the lock released,
// every node's object loses the container's reference (objects that hold
// containers of their own are drained in turn). A corrupt container is
// left detached; what it held cannot be reached and leaks.
func (m *Map) drainValue(p unsafe.Pointer) {
	if m.g.table == nil {
		return
	}
	base := m.valueOff(p)
	v := storage(p, m.valueSize)
	empty := true
	for _, f := range m.g.roots {
		for _, b := range v[f.Off : f.Off+16] {
			if b != 0 {
				empty = false
			}
		}
	}
	if empty {
		return
	}
	var ds []graph.Detached
	l := m.valueLock(p)
	l.Lock(m.holder)
	for _, f := range m.g.roots {
		if d, err := m.g.heap.Detach(graph.RootOf(m.g.table, f, base)); err == nil {
			ds = append(ds, d)
		}
	}
	l.Unlock()
	for _, d := range ds {
		_ = m.g.heap.Release(d)
	}
}

// IsValue reports whether addr (in this process) is the first byte of one
// of the map's values: an array slot or an element of a preallocated hash.
func (m *Map) IsValue(addr uintptr) bool {
	base := uintptr(m.region.Pointer(0))
	if addr < base {
		return false
	}
	off := uint64(addr - base)
	switch o := m.ops.(type) {
	case arrayOps:
		d := off - m.d.Data
		return !o.perCPU && off >= m.d.Data && d < uint64(m.maxEntries)*uint64(m.stride) && d%uint64(m.stride) == 0
	case *hashOps:
		vo := uint64(uintptr(o.value(m, m.d.Pool)) - base - uintptr(m.d.Pool))
		return !o.perCPU && m.d.Pool != 0 && off >= vo && o.inPool(m, off-vo)
	}
	return false
}

// Walk returns the objects in the container (bpf_rb_root or bpf_list_head)
// at byte offset field of value, in order: a tree's smallest key first, a
// list's front first. value is the slice WithLock passes to its function,
// and the walk must run inside that function (the value's lock guards the
// container). Each object is yielded as its bytes, which are read-only and
// valid only until the next step; a container another process corrupted
// yields a final ErrCorrupt error.
//
//	err := m.WithLock(key, func(v []byte) error {
//		for obj, err := range m.Walk(v, rootOffset) {
//			if err != nil {
//				return err
//			}
//			fmt.Println(binary.NativeEndian.Uint64(obj))
//		}
//		return nil
//	})
func (m *Map) Walk(value []byte, field uint32) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		if m.g.table == nil || len(value) != int(m.valueSize) {
			yield(nil, fmt.Errorf("walk map %q: %w: the map's values hold no containers", m.name, ErrGraph))
			return
		}
		var f graph.Field
		found := false
		for _, r := range m.g.roots {
			if r.Off == field {
				f, found = r, true
			}
		}
		off, ok := m.g.heap.Offset(uintptr(unsafe.Pointer(unsafe.SliceData(value))), uint64(m.valueSize))
		switch {
		case !found:
			yield(nil, fmt.Errorf("walk map %q: %w: offset %d", m.name, ErrGraph, field))
			return
		case !ok:
			yield(nil, fmt.Errorf("walk map %q: %w: the value is not in the region", m.name, ErrInvalid))
			return
		}
		walkRoot(m.g.heap, graph.RootOf(m.g.table, f, off), yield)
	}
}

// WalkObject walks a container inside an object that Walk yielded (nested
// containers: an object holding a bpf_spin_lock and a root of its own).
// It takes the object's own lock for the walk; callers hold the outer
// value's lock (WithLock), so the object cannot go away meanwhile.
func (m *Map) WalkObject(obj []byte, field uint32) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		h := m.g.heap
		if h == nil {
			yield(nil, fmt.Errorf("walk map %q: %w", m.name, ErrGraph))
			return
		}
		off, ok := h.Offset(uintptr(unsafe.Pointer(unsafe.SliceData(obj))), uint64(len(obj)))
		var o graph.Object
		var err error
		if ok {
			o, err = h.Object(off)
		}
		switch {
		case !ok:
			err = fmt.Errorf("%w: the object is not in the region", ErrInvalid)
		case err != nil:
		default:
			tb, _ := h.Table(o.Table)
			for _, f := range o.Type.Roots() {
				if f.Off != field {
					continue
				}
				lo, _ := o.Type.Lock()
				l := m.lockAt(off + uint64(lo))
				l.Lock(m.holder)
				defer l.Unlock()
				walkRoot(h, graph.RootOf(tb, f, off), yield)
				return
			}
			err = fmt.Errorf("%w: offset %d of the object", ErrGraph, field)
		}
		yield(nil, fmt.Errorf("walk map %q: %w", m.name, err))
	}
}

// lockAt is the spin lock word at region offset off.
func (m *Map) lockAt(off uint64) *lock.SpinLock { return (*lock.SpinLock)(m.region.Pointer(off)) }

func walkRoot(h *graph.Heap, rt graph.Root, yield func([]byte, error) bool) {
	stopped := false
	err := h.Walk(rt, func(o graph.Object) bool {
		b, berr := h.Region().Bytes(o.Off, uint64(o.Type.Size))
		if berr != nil {
			return false
		}
		if !yield(b, nil) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil && !stopped {
		yield(nil, err)
	}
}
