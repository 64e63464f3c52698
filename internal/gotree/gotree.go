// Package gotree is a textbook red-black tree of Go pointers: the
// baseline the region-resident trees of package graph are measured
// against (go test -bench RBTree ./graph, userbpf bench graph).
package gotree

// Node is a tree node: a key and Go pointers.
type Node struct {
	Key                 uint64
	left, right, parent *Node
	red                 bool
}

// Tree is a red-black tree of Nodes ordered by Key (ties go right).
type Tree struct{ root *Node }

func (t *Tree) rotate(x *Node, left bool) {
	var y *Node
	if left {
		y = x.right
		x.right = y.left
		if y.left != nil {
			y.left.parent = x
		}
	} else {
		y = x.left
		x.left = y.right
		if y.right != nil {
			y.right.parent = x
		}
	}
	y.parent = x.parent
	t.replace(x.parent, x, y)
	if left {
		y.left = x
	} else {
		y.right = x
	}
	x.parent = y
}

func (t *Tree) replace(p, old, new *Node) {
	switch {
	case p == nil:
		t.root = new
	case p.left == old:
		p.left = new
	default:
		p.right = new
	}
}

func isRed(n *Node) bool { return n != nil && n.red }

// Insert adds z, which must not be in a tree.
func (t *Tree) Insert(z *Node) {
	var p *Node
	for cur := t.root; cur != nil; {
		p = cur
		if z.Key < cur.Key {
			cur = cur.left
		} else {
			cur = cur.right
		}
	}
	z.left, z.right, z.parent, z.red = nil, nil, p, true
	switch {
	case p == nil:
		t.root = z
	case z.Key < p.Key:
		p.left = z
	default:
		p.right = z
	}
	for z.parent != nil && z.parent.red {
		p := z.parent
		g := p.parent
		if g == nil {
			break
		}
		isLeft := p == g.left
		u := g.left
		if isLeft {
			u = g.right
		}
		if isRed(u) {
			p.red, u.red, g.red = false, false, true
			z = g
			continue
		}
		if isLeft && z == p.right || !isLeft && z == p.left {
			z = p
			t.rotate(z, isLeft)
			p = z.parent
		}
		p.red, g.red = false, true
		t.rotate(g, !isLeft)
	}
	t.root.red = false
}

// Remove takes z, which must be in t, out of t.
func (t *Tree) Remove(z *Node) {
	y := z
	if z.left != nil && z.right != nil {
		y = z.right
		for y.left != nil {
			y = y.left
		}
	}
	x := y.left
	if x == nil {
		x = y.right
	}
	xp := y.parent
	if x != nil {
		x.parent = xp
	}
	t.replace(xp, y, x)
	yRed := y.red
	if y != z {
		y.left, y.right, y.parent, y.red = z.left, z.right, z.parent, z.red
		if y.left != nil {
			y.left.parent = y
		}
		if y.right != nil {
			y.right.parent = y
		}
		t.replace(z.parent, z, y)
		if xp == z {
			xp = y
		}
	}
	if yRed {
		return
	}
	for x != t.root && !isRed(x) {
		isLeft := x == xp.left
		w := xp.right
		if !isLeft {
			w = xp.left
		}
		if isRed(w) {
			w.red, xp.red = false, true
			t.rotate(xp, isLeft)
			w = xp.right
			if !isLeft {
				w = xp.left
			}
		}
		near, far := w.left, w.right
		if !isLeft {
			near, far = w.right, w.left
		}
		if !isRed(near) && !isRed(far) {
			w.red = true
			x, xp = xp, xp.parent
			continue
		}
		if !isRed(far) {
			near.red, w.red = false, true
			t.rotate(w, !isLeft)
			w = xp.right
			if !isLeft {
				w = xp.left
			}
			far = w.right
			if !isLeft {
				far = w.left
			}
		}
		w.red, xp.red = xp.red, false
		if far != nil {
			far.red = false
		}
		t.rotate(xp, isLeft)
		x = t.root
	}
	if x != nil {
		x.red = false
	}
}
