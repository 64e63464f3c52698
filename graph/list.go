package graph

import (
	"sync/atomic"
	"unsafe"
)

// A struct bpf_list_head (16 bytes) holds
//
//	0  First u64  offset of the first node's bpf_list_node, 0 when empty
//	8  Last u64   offset of the last node's bpf_list_node, 0 when empty
//
// and a struct bpf_list_node (24 bytes, inside an object)
//
//	0  Next u64   offset of the next node, 0 at the end
//	8  Prev u64   offset of the previous node, 0 at the front
//	16 Owner u64  offset of the bpf_list_head holding the node, 0 when in none
//
// Zeroed, a head is an empty list and a node is in no list. Owner is
// claimed with a compare-and-swap, as for rb nodes.
type listHead struct {
	First uint64
	Last  uint64
}

type listNode struct {
	Next  uint64
	Prev  uint64
	Owner atomic.Uint64
}

var (
	_ [16 - unsafe.Sizeof(listHead{})]byte
	_ [24 - unsafe.Sizeof(listNode{})]byte
)

func (h *Heap) head(off uint64) *listHead {
	return (*listHead)(h.ptr(off, 16, "bpf_list_head"))
}

func (h *Heap) lnode(off uint64) *listNode {
	return (*listNode)(h.ptr(off, 24, "bpf_list_node"))
}

// ListPush adds node (the offset of an object's bpf_list_node) at the
// front or the back of the list rt. It returns false if the node is
// already in a list (the caller drops the reference, as the kernel does).
// The list's lock must be held.
func (h *Heap) ListPush(rt Root, node uint64, front bool) (added bool, err error) {
	defer catch(&err)
	hd := h.head(rt.Off)
	n := h.lnode(node)
	if !n.Owner.CompareAndSwap(0, rt.Off) {
		return false, nil
	}
	if (hd.First == 0) != (hd.Last == 0) {
		n.Owner.Store(0)
		corrupt("bpf_list_head %#x: first %#x, last %#x", rt.Off, hd.First, hd.Last)
	}
	if front {
		n.Prev, n.Next = 0, hd.First
		if hd.First != 0 {
			h.lnode(hd.First).Prev = node
		} else {
			hd.Last = node
		}
		hd.First = node
	} else {
		n.Next, n.Prev = 0, hd.Last
		if hd.Last != 0 {
			h.lnode(hd.Last).Next = node
		} else {
			hd.First = node
		}
		hd.Last = node
	}
	return true, nil
}

// ListPop removes the first (front) or last node of the list rt and
// returns it, or 0 if the list is empty. The list's lock must be held.
func (h *Heap) ListPop(rt Root, front bool) (node uint64, err error) {
	defer catch(&err)
	hd := h.head(rt.Off)
	node = hd.Last
	if front {
		node = hd.First
	}
	if node == 0 {
		if hd.First != 0 || hd.Last != 0 {
			corrupt("bpf_list_head %#x: first %#x, last %#x", rt.Off, hd.First, hd.Last)
		}
		return 0, nil
	}
	n := h.lnode(node)
	if n.Owner.Load() != rt.Off {
		corrupt("bpf_list_node %#x in list %#x belongs to %#x", node, rt.Off, n.Owner.Load())
	}
	if front {
		hd.First = n.Next
		if n.Next != 0 {
			h.lnode(n.Next).Prev = 0
		} else {
			hd.Last = 0
		}
	} else {
		hd.Last = n.Prev
		if n.Prev != 0 {
			h.lnode(n.Prev).Next = 0
		} else {
			hd.First = 0
		}
	}
	n.Next, n.Prev = 0, 0
	n.Owner.Store(0)
	return node, nil
}
