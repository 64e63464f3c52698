package graph

import (
	"sync/atomic"
	"unsafe"
)

// A struct bpf_rb_root (16 bytes) holds
//
//	0  Root u64      offset of the root node's bpf_rb_node, 0 when empty
//	8  Leftmost u64  offset of the first (smallest) node, 0 when empty
//
// and a struct bpf_rb_node (32 bytes, inside an object)
//
//	0  Left u64      offset of the left child's bpf_rb_node, or 0
//	8  Right u64     offset of the right child's bpf_rb_node, or 0
//	16 Parent u64    offset of the parent's bpf_rb_node | color (bit 0: 1 black)
//	24 Owner u64     offset of the bpf_rb_root holding the node, 0 when in none
//
// A zeroed root is an empty tree and a zeroed node is in no tree, as
// bpf_obj_new and a new map value leave them. Offsets are 8-aligned, so
// bit 0 of Parent is free for the color. Owner is claimed with a
// compare-and-swap: two trees with different locks may race to add the
// same refcounted object, and only one wins.
type rbRoot struct {
	Root     uint64
	Leftmost uint64
}

type rbNode struct {
	Left   uint64
	Right  uint64
	Parent uint64
	Owner  atomic.Uint64
}

var (
	_ [16 - unsafe.Sizeof(rbRoot{})]byte
	_ [32 - unsafe.Sizeof(rbNode{})]byte
)

const black = 1

type tree struct {
	h    *Heap
	root *rbRoot
}

func (t *tree) n(off uint64) *rbNode { return (*rbNode)(t.h.ptr(off, 32, "bpf_rb_node")) }

func (t *tree) parent(x uint64) uint64 { return t.n(x).Parent &^ black }
func (t *tree) isBlack(x uint64) bool  { return x == 0 || t.n(x).Parent&black != 0 }
func (t *tree) setParent(x, p uint64) {
	n := t.n(x)
	n.Parent = p | n.Parent&black
}
func (t *tree) setBlack(x uint64, b bool) {
	n := t.n(x)
	if b {
		n.Parent |= black
	} else {
		n.Parent &^= black
	}
}

// replaceChild makes new take old's place under p (or at the root).
func (t *tree) replaceChild(p, old, new uint64) {
	switch {
	case p == 0:
		t.root.Root = new
	case t.n(p).Left == old:
		t.n(p).Left = new
	case t.n(p).Right == old:
		t.n(p).Right = new
	default:
		corrupt("bpf_rb_node %#x is not a child of its parent %#x", old, p)
	}
}

func (t *tree) rotateLeft(x uint64) {
	y := t.n(x).Right
	yl := t.n(y).Left
	t.n(x).Right = yl
	if yl != 0 {
		t.setParent(yl, x)
	}
	p := t.parent(x)
	t.setParent(y, p)
	t.replaceChild(p, x, y)
	t.n(y).Left = x
	t.setParent(x, y)
}

func (t *tree) rotateRight(x uint64) {
	y := t.n(x).Left
	yr := t.n(y).Right
	t.n(x).Left = yr
	if yr != 0 {
		t.setParent(yr, x)
	}
	p := t.parent(x)
	t.setParent(y, p)
	t.replaceChild(p, x, y)
	t.n(y).Right = x
	t.setParent(x, y)
}

// maxDepth bounds a descent: a red-black tree of 2^64 nodes is at most
// 128 deep.
const maxDepth = 128

// RBAdd inserts node (the offset of an object's bpf_rb_node) into the tree
// rt, calling less(a, b) — the program's callback, with node offsets — to
// order it: a node goes left of every node it is less than, so equal keys
// keep insertion order (ties go right, as in the kernel). It returns false
// if the node is already in a tree (the caller then drops the reference it
// passed, as the kernel does). The tree's lock must be held.
func (h *Heap) RBAdd(rt Root, node uint64, less func(a, b uint64) (bool, error)) (added bool, err error) {
	defer catch(&err)
	t := &tree{h: h, root: (*rbRoot)(h.ptr(rt.Off, 16, "bpf_rb_root"))}
	z := t.n(node)
	if !z.Owner.CompareAndSwap(0, rt.Off) {
		return false, nil
	}
	var p uint64
	leftmost, left := true, false
	for cur, depth := t.root.Root, 0; cur != 0; depth++ {
		if depth > maxDepth {
			corrupt("bpf_rb_root %#x: deeper than %d", rt.Off, maxDepth)
		}
		c := t.n(cur)
		lt, lerr := less(node, cur)
		if lerr != nil {
			z.Owner.Store(0)
			return false, lerr
		}
		p = cur
		if left = lt; left {
			cur = c.Left
		} else {
			cur, leftmost = c.Right, false
		}
	}
	z.Left, z.Right, z.Parent = 0, 0, p // red
	switch {
	case p == 0:
		t.root.Root = node
	case left:
		t.n(p).Left = node
	default:
		t.n(p).Right = node
	}
	if leftmost {
		t.root.Leftmost = node
	}
	t.insertFixup(node)
	return true, nil
}

func (t *tree) insertFixup(z uint64) {
	for steps := 0; ; steps++ {
		if steps > maxDepth {
			corrupt("red-black fixup does not terminate")
		}
		p := t.parent(z)
		if p == 0 || t.isBlack(p) {
			break
		}
		g := t.parent(p)
		if g == 0 {
			break
		}
		if p == t.n(g).Left {
			u := t.n(g).Right
			if !t.isBlack(u) {
				t.setBlack(p, true)
				t.setBlack(u, true)
				t.setBlack(g, false)
				z = g
				continue
			}
			if z == t.n(p).Right {
				z = p
				t.rotateLeft(z)
				p = t.parent(z)
			}
			t.setBlack(p, true)
			t.setBlack(g, false)
			t.rotateRight(g)
		} else {
			u := t.n(g).Left
			if !t.isBlack(u) {
				t.setBlack(p, true)
				t.setBlack(u, true)
				t.setBlack(g, false)
				z = g
				continue
			}
			if z == t.n(p).Left {
				z = p
				t.rotateRight(z)
				p = t.parent(z)
			}
			t.setBlack(p, true)
			t.setBlack(g, false)
			t.rotateLeft(g)
		}
	}
	t.setBlack(t.root.Root, true)
}

// RBFirst returns the smallest node of the tree, or 0 if it is empty.
func (h *Heap) RBFirst(rt Root) (node uint64, err error) {
	defer catch(&err)
	r := (*rbRoot)(h.ptr(rt.Off, 16, "bpf_rb_root"))
	if r.Leftmost == 0 && r.Root != 0 {
		corrupt("bpf_rb_root %#x: a root node without a leftmost", rt.Off)
	}
	return r.Leftmost, nil
}

func (t *tree) min(x uint64) uint64 {
	for i := 0; ; i++ {
		if i > maxDepth {
			corrupt("bpf_rb_node %#x: left spine deeper than %d", x, maxDepth)
		}
		l := t.n(x).Left
		if l == 0 {
			return x
		}
		x = l
	}
}

// next is x's in-order successor, or 0.
func (t *tree) next(x uint64) uint64 {
	if r := t.n(x).Right; r != 0 {
		return t.min(r)
	}
	for i := 0; ; i++ {
		if i > maxDepth {
			corrupt("bpf_rb_node %#x: parent chain deeper than %d", x, maxDepth)
		}
		p := t.parent(x)
		if p == 0 || t.n(p).Left == x {
			return p
		}
		x = p
	}
}

// RBRemove takes node out of the tree and returns it, or returns 0 if the
// node is not in this tree (bpf_rbtree_remove's NULL). The tree's lock
// must be held.
func (h *Heap) RBRemove(rt Root, node uint64) (removed uint64, err error) {
	defer catch(&err)
	t := &tree{h: h, root: (*rbRoot)(h.ptr(rt.Off, 16, "bpf_rb_root"))}
	z := t.n(node)
	if z.Owner.Load() != rt.Off {
		return 0, nil
	}
	if t.root.Leftmost == node {
		t.root.Leftmost = t.next(node)
	}
	t.erase(node)
	z.Left, z.Right, z.Parent = 0, 0, 0
	z.Owner.Store(0)
	return node, nil
}

// erase unlinks z and rebalances (CLRS, with the successor relinked into
// z's place since nodes cannot be copied).
func (t *tree) erase(z uint64) {
	zn := t.n(z)
	y := z
	if zn.Left != 0 && zn.Right != 0 {
		y = t.min(zn.Right)
	}
	yn := t.n(y)
	x := yn.Left
	if x == 0 {
		x = yn.Right
	}
	xp := t.parent(y)
	if x != 0 {
		t.setParent(x, xp)
	}
	t.replaceChild(xp, y, x)
	yBlack := t.isBlack(y)
	if y != z {
		// y takes z's place, links and color.
		zp := t.parent(z)
		yn.Left, yn.Right = zn.Left, zn.Right
		yn.Parent = zp | zn.Parent&black
		if yn.Left != 0 {
			t.setParent(yn.Left, y)
		}
		if yn.Right != 0 {
			t.setParent(yn.Right, y)
		}
		t.replaceChild(zp, z, y)
		if xp == z {
			xp = y
		}
	}
	if yBlack {
		t.eraseFixup(x, xp)
	}
}

func (t *tree) eraseFixup(x, xp uint64) {
	for steps := 0; x != t.root.Root && t.isBlack(x); steps++ {
		if steps > maxDepth || xp == 0 {
			corrupt("red-black erase fixup does not terminate")
		}
		if x == t.n(xp).Left {
			w := t.n(xp).Right
			if !t.isBlack(w) {
				t.setBlack(w, true)
				t.setBlack(xp, false)
				t.rotateLeft(xp)
				w = t.n(xp).Right
			}
			if t.isBlack(t.n(w).Left) && t.isBlack(t.n(w).Right) {
				t.setBlack(w, false)
				x = xp
				xp = t.parent(x)
				continue
			}
			if t.isBlack(t.n(w).Right) {
				t.setBlack(t.n(w).Left, true)
				t.setBlack(w, false)
				t.rotateRight(w)
				w = t.n(xp).Right
			}
			t.setBlack(w, t.isBlack(xp))
			t.setBlack(xp, true)
			if r := t.n(w).Right; r != 0 {
				t.setBlack(r, true)
			}
			t.rotateLeft(xp)
		} else {
			w := t.n(xp).Left
			if !t.isBlack(w) {
				t.setBlack(w, true)
				t.setBlack(xp, false)
				t.rotateRight(xp)
				w = t.n(xp).Left
			}
			if t.isBlack(t.n(w).Right) && t.isBlack(t.n(w).Left) {
				t.setBlack(w, false)
				x = xp
				xp = t.parent(x)
				continue
			}
			if t.isBlack(t.n(w).Left) {
				t.setBlack(t.n(w).Right, true)
				t.setBlack(w, false)
				t.rotateLeft(w)
				w = t.n(xp).Left
			}
			t.setBlack(w, t.isBlack(xp))
			t.setBlack(xp, true)
			if l := t.n(w).Left; l != 0 {
				t.setBlack(l, true)
			}
			t.rotateRight(xp)
		}
		x = t.root.Root
		break
	}
	if x != 0 {
		t.setBlack(x, true)
	}
}
