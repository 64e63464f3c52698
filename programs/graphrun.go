package programs

import (
	"fmt"

	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/vm"
)

// progGraph is what a program's kfuncs know about graph containers: the
// type table of the structs it allocates and the maps whose values hold
// containers.
type progGraph struct {
	heap  *graph.Heap
	types uint64 // the program's type table (bpf_obj_new), 0 if none
	maps  []graphMap
}

// graphMap is one of the program's maps whose values hold containers.
type graphMap struct {
	m     *maps.Map
	table *graph.Table
	lock  uint32
	roots []graph.Field
}

func newProgGraph(p *Program, types uint64) (*progGraph, error) {
	g := &progGraph{heap: graph.Of(p.region), types: types}
	if types != 0 {
		if _, err := g.heap.Table(types); err != nil {
			return nil, err
		}
	}
	for _, m := range p.maps {
		tb := m.GraphTable()
		if tb == nil {
			continue
		}
		lock, _ := tb.Types[0].Lock()
		g.maps = append(g.maps, graphMap{m: m, table: tb, lock: lock, roots: tb.Types[0].Roots()})
	}
	return g, nil
}

// objRef is a reference a run holds on an object: owning (from
// bpf_obj_new, a pop, a remove, bpf_refcount_acquire; the run must insert
// or drop it) or not (an object left in a container, or bpf_rbtree_first's
// result; usable until the lock is released).
type objRef struct {
	addr  uintptr
	off   uint64
	size  uint32
	owned bool
}

// graphRun is a run's graph state.
type graphRun struct {
	refs []objRef
	// busy is set while a kfunc changes a container (during a less
	// callback): a graph kfunc called from the callback is refused.
	busy bool
}

// track records a reference and lets the program touch the object.
func (h *run) track(m *vm.Machine, o graph.Object, owned bool) uintptr {
	addr := h.graph.heap.Addr(o.Off)
	if !h.tracked(addr) {
		m.AllowRange(addr, uintptr(o.Type.Size), true)
	}
	h.g.refs = append(h.g.refs, objRef{addr: addr, off: o.Off, size: o.Type.Size, owned: owned})
	m.SlowUnlock = true // unlocking ends non-owning references: the helper's job
	return addr
}

func (h *run) tracked(addr uintptr) bool {
	for _, r := range h.g.refs {
		if r.addr == addr {
			return true
		}
	}
	return false
}

// ref finds a reference on the object at addr (an owning one if owned).
func (h *run) ref(addr uintptr, owned bool) int {
	for i := len(h.g.refs) - 1; i >= 0; i-- {
		if r := h.g.refs[i]; r.addr == addr && (r.owned || !owned) {
			return i
		}
	}
	return -1
}

// forget removes reference i; the object stays accessible while the run
// holds another reference on it.
func (h *run) forget(m *vm.Machine, i int) {
	addr := h.g.refs[i].addr
	h.g.refs = append(h.g.refs[:i], h.g.refs[i+1:]...)
	if !h.tracked(addr) {
		m.RevokeRange(addr)
	}
}

// graphUnlocked ends the non-owning references when the program releases
// its lock (the kernel's verifier invalidates them there).
func (h *run) graphUnlocked(m *vm.Machine) {
	for i := len(h.g.refs) - 1; i >= 0; i-- {
		if !h.g.refs[i].owned {
			h.forget(m, i)
		}
	}
}

// graphCleanup drops the objects a run that stopped early still owned.
func (h *run) graphCleanup() (dropped int) {
	for _, r := range h.g.refs {
		if r.owned {
			_ = h.graph.heap.Drop(r.off)
			dropped++
		}
	}
	h.g.refs = h.g.refs[:0]
	h.g.busy = false
	return dropped
}

// rootAt resolves the container at address addr, of kind k, and checks
// that the program holds the lock that guards it: the bpf_spin_lock of the
// same map value or the same object. The static verifier proves this at
// load; it is checked again here because a stored program may come from
// anywhere.
func (h *run) rootAt(m *vm.Machine, name string, addr uint64, k graph.Kind) (graph.Root, error) {
	g := h.graph
	if g == nil || h.g.busy {
		return graph.Root{}, fmt.Errorf("%s: no graph operation may run here (inside a less callback, or without containers)", name)
	}
	if !m.CanAccess(addr, 16, true) {
		return graph.Root{}, fmt.Errorf("%s: %#x is not a %s the program may use", name, addr, k)
	}
	lockAddr := uintptr(m.HeldLock())
	a := uintptr(addr)
	for _, r := range h.g.refs {
		if a < r.addr || a >= r.addr+uintptr(r.size) {
			continue
		}
		o, err := g.heap.Object(r.off)
		if err != nil {
			return graph.Root{}, fmt.Errorf("%s: %w", name, err)
		}
		f, ok := o.Type.FieldAt(uint32(a-r.addr), k)
		if !ok {
			return graph.Root{}, fmt.Errorf("%s: %#x is not a %s of the object at %#x", name, addr, k, r.addr)
		}
		lo, _ := o.Type.Lock()
		if lockAddr != r.addr+uintptr(lo) {
			return graph.Root{}, fmt.Errorf("%s: the object's bpf_spin_lock (%#x) guarding %s at %#x is not held", name, r.addr+uintptr(lo), k, addr)
		}
		tb, _ := g.heap.Table(o.Table)
		return graph.RootOf(tb, f, r.off), nil
	}
	for _, gm := range g.maps {
		for _, f := range gm.roots {
			if f.Kind != k || a < uintptr(f.Off) {
				continue
			}
			v := a - uintptr(f.Off)
			if !gm.m.IsValue(v) {
				continue
			}
			if lockAddr != v+uintptr(gm.lock) {
				return graph.Root{}, fmt.Errorf("%s: the bpf_spin_lock of the map %s value guarding %s at %#x is not held", name, gm.m.Name(), k, addr)
			}
			off, _ := g.heap.Offset(v, 1)
			return graph.RootOf(gm.table, f, off), nil
		}
	}
	return graph.Root{}, fmt.Errorf("%s: %#x is not a %s in a map value or object the program holds", name, addr, k)
}

// ownedNode resolves a node argument: the object it is in must be one the
// run holds a reference on (owned, if owned), and of the type the
// container holds.
func (h *run) ownedNode(name string, rt graph.Root, node uint64, owned bool) (int, uint64, error) {
	obj := uintptr(node) - uintptr(rt.NodeOff)
	i := h.ref(obj, owned)
	if uintptr(node) < uintptr(rt.NodeOff) || i < 0 {
		what := "holds a reference on"
		if owned {
			what = "owns"
		}
		return -1, 0, fmt.Errorf("%s: %#x is not the node of an object the program %s", name, node, what)
	}
	nodeOff := h.g.refs[i].off + uint64(rt.NodeOff)
	if _, err := h.graph.heap.ObjectOf(rt, nodeOff); err != nil {
		return -1, 0, fmt.Errorf("%s: %w", name, err)
	}
	return i, nodeOff, nil
}
