package programs

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/vm"
)

// The graph kfuncs: bpf_obj_new/drop, bpf_refcount_acquire, list push and
// pop, rbtree add/first/remove, with the kernel's signatures (the meta and
// off arguments the kernel's verifier fills in are ignored: the object
// headers and type tables carry what they would say). Objects live in
// region memory (package graph), so any process can run the programs that
// use them and drain the values that hold them.
//
// Run-time checks stand in for the verifier's proofs: a container is only
// touched while the program holds its lock, a node is only inserted from
// an owning reference, dropped once, and objects are accessible only while
// the run holds a reference on them.

func kfObjNew(m *vm.Machine, typ, _, _, _, _ uint64) (uint64, error) {
	h := hostOf(m)
	if h.graph == nil || h.graph.types == 0 || h.g.busy {
		return 0, fmt.Errorf("bpf_obj_new: the program has no type table, or calls it from a less callback")
	}
	tb, err := h.graph.heap.Table(h.graph.types)
	if err != nil {
		return 0, fmt.Errorf("bpf_obj_new: %w", err)
	}
	if typ >= uint64(len(tb.Types)) {
		return 0, fmt.Errorf("bpf_obj_new: type %d is not in the program's type table", typ)
	}
	off, err := h.graph.heap.New(h.graph.types, uint32(typ))
	if err != nil {
		return 0, nil // out of region memory: NULL, as the kernel's allocator
	}
	o, err := h.graph.heap.Object(off)
	if err != nil {
		return 0, fmt.Errorf("bpf_obj_new: %w", err)
	}
	return uint64(h.track(m, o, true)), nil
}

func kfObjDrop(m *vm.Machine, p, _, _, _, _ uint64) (uint64, error) {
	h := hostOf(m)
	i := -1
	if h.graph != nil && !h.g.busy {
		i = h.ref(uintptr(p), true)
	}
	if i < 0 {
		return 0, fmt.Errorf("bpf_obj_drop: %#x is not an object the program owns (or the call is from a less callback)", p)
	}
	off := h.g.refs[i].off
	h.forget(m, i)
	if err := h.graph.heap.Drop(off); err != nil {
		return 0, fmt.Errorf("bpf_obj_drop: %w", err)
	}
	return 0, nil
}

func kfRefcountAcquire(m *vm.Machine, p, _, _, _, _ uint64) (uint64, error) {
	h := hostOf(m)
	i := -1
	if h.graph != nil && !h.g.busy {
		i = h.ref(uintptr(p), false)
	}
	if i < 0 {
		return 0, fmt.Errorf("bpf_refcount_acquire: %#x is not an object the program holds (or the call is from a less callback)", p)
	}
	r := h.g.refs[i]
	ok, err := h.graph.heap.Acquire(r.off)
	if err != nil {
		return 0, fmt.Errorf("bpf_refcount_acquire: %w", err)
	}
	if !ok {
		return 0, nil
	}
	h.g.refs = append(h.g.refs, objRef{addr: r.addr, off: r.off, size: r.size, owned: true})
	return p, nil
}

// insert is the common part of push and add: the node's owning reference
// is consumed; a node already in a container is -EINVAL and the reference
// is dropped, as the kernel does.
func insert(m *vm.Machine, name string, head, node uint64, k graph.Kind, do func(rt graph.Root, node uint64) (bool, error)) (uint64, error) {
	h := hostOf(m)
	rt, err := h.rootAt(m, name, head, k)
	if err != nil {
		return 0, err
	}
	i, nodeOff, err := h.ownedNode(name, rt, node, true)
	if err != nil {
		return 0, err
	}
	h.g.busy = true
	ok, err := do(rt, nodeOff)
	h.g.busy = false
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if !ok {
		off := h.g.refs[i].off
		h.forget(m, i)
		if err := h.graph.heap.Drop(off); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return neg(unix.EINVAL), nil
	}
	h.g.refs[i].owned = false // a non-owning reference until the unlock
	return 0, nil
}

func kfListPushFront(m *vm.Machine, head, node, _, _, _ uint64) (uint64, error) {
	return listPush(m, "bpf_list_push_front", head, node, true)
}

func kfListPushBack(m *vm.Machine, head, node, _, _, _ uint64) (uint64, error) {
	return listPush(m, "bpf_list_push_back", head, node, false)
}

func listPush(m *vm.Machine, name string, head, node uint64, front bool) (uint64, error) {
	heap := hostOf(m).graph
	return insert(m, name, head, node, graph.KindListHead, func(rt graph.Root, n uint64) (bool, error) {
		return heap.heap.ListPush(rt, n, front)
	})
}

func kfListPopFront(m *vm.Machine, head, _, _, _, _ uint64) (uint64, error) {
	return listPop(m, "bpf_list_pop_front", head, true)
}

func kfListPopBack(m *vm.Machine, head, _, _, _, _ uint64) (uint64, error) {
	return listPop(m, "bpf_list_pop_back", head, false)
}

func listPop(m *vm.Machine, name string, head uint64, front bool) (uint64, error) {
	h := hostOf(m)
	rt, err := h.rootAt(m, name, head, graph.KindListHead)
	if err != nil {
		return 0, err
	}
	n, err := h.graph.heap.ListPop(rt, front)
	if err != nil || n == 0 {
		return 0, wrapErr(name, err)
	}
	return h.handOut(m, name, rt, n, true)
}

// handOut gives the program a reference on the object of node n and
// returns the node's address.
func (h *run) handOut(m *vm.Machine, name string, rt graph.Root, n uint64, owned bool) (uint64, error) {
	o, err := h.graph.heap.ObjectOf(rt, n)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return uint64(h.track(m, o, owned)) + uint64(rt.NodeOff), nil
}

func wrapErr(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

func kfRBTreeAdd(m *vm.Machine, root, node, less, _, _ uint64) (uint64, error) {
	const name = "bpf_rbtree_add"
	if !vm.IsCallback(less) {
		return 0, fmt.Errorf("%s: %#x is not a callback", name, less)
	}
	h := hostOf(m)
	held := m.HeldLock()
	return insert(m, name, root, node, graph.KindRBRoot, func(rt graph.Root, n uint64) (bool, error) {
		heap := h.graph.heap
		return heap.RBAdd(rt, n, func(a, b uint64) (bool, error) {
			// b's object is in the tree: the callback may read it.
			bo, err := heap.ObjectOf(rt, b)
			if err != nil {
				return false, err
			}
			baddr := heap.Addr(bo.Off)
			lent := !h.tracked(baddr)
			if lent {
				m.AllowRange(baddr, uintptr(bo.Type.Size), false)
			}
			r0, err := m.CallFunc(less, uint64(heap.Addr(a)), uint64(heap.Addr(b)), 0, 0, 0)
			if lent {
				m.RevokeRange(baddr)
			}
			if err == nil && m.HeldLock() != held {
				err = fmt.Errorf("the less callback released the tree's lock")
			}
			return r0&0xff != 0, err
		})
	})
}

func kfRBTreeFirst(m *vm.Machine, root, _, _, _, _ uint64) (uint64, error) {
	const name = "bpf_rbtree_first"
	h := hostOf(m)
	rt, err := h.rootAt(m, name, root, graph.KindRBRoot)
	if err != nil {
		return 0, err
	}
	n, err := h.graph.heap.RBFirst(rt)
	if err != nil || n == 0 {
		return 0, wrapErr(name, err)
	}
	return h.handOut(m, name, rt, n, false)
}

func kfRBTreeRemove(m *vm.Machine, root, node, _, _, _ uint64) (uint64, error) {
	const name = "bpf_rbtree_remove"
	h := hostOf(m)
	rt, err := h.rootAt(m, name, root, graph.KindRBRoot)
	if err != nil {
		return 0, err
	}
	_, nodeOff, err := h.ownedNode(name, rt, node, false)
	if err != nil {
		return 0, err
	}
	n, err := h.graph.heap.RBRemove(rt, nodeOff)
	if err != nil || n == 0 {
		return 0, wrapErr(name, err)
	}
	return h.handOut(m, name, rt, n, true)
}
