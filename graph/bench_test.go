package graph

import (
	"math/rand/v2"
	"testing"
)

// The benchmarks add and remove one node in a tree of 10 000: the region
// tree (offsets, every link checked) against a plain pointer red-black
// tree in Go (baseline below, the same algorithm). Both compare keys with
// a Go function; a program's less callback would add the VM's cost.

const benchNodes = 10_000

func BenchmarkRBTreeRegion(b *testing.B) {
	f := newFixture(b)
	rng := rand.New(rand.NewPCG(5, 6))
	nodes := make([]uint64, benchNodes)
	for i := range nodes {
		nodes[i] = f.newElem(b, rng.Uint64()) + 8
		if ok, err := f.h.RBAdd(f.tree, nodes[i], f.less); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := nodes[i%benchNodes]
		if got, err := f.h.RBRemove(f.tree, n); got != n || err != nil {
			b.Fatal(got, err)
		}
		if ok, err := f.h.RBAdd(f.tree, n, f.less); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkRBTreeGoBaseline(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	var t goTree
	nodes := make([]*goNode, benchNodes)
	for i := range nodes {
		nodes[i] = &goNode{key: rng.Uint64()}
		t.insert(nodes[i])
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := nodes[i%benchNodes]
		t.remove(n)
		t.insert(n)
	}
}

// goTree is the baseline: a textbook red-black tree of Go pointers.
type goNode struct {
	key                 uint64
	left, right, parent *goNode
	red                 bool
}

type goTree struct{ root *goNode }

func (t *goTree) rotate(x *goNode, left bool) {
	var y *goNode
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

func (t *goTree) replace(p, old, new *goNode) {
	switch {
	case p == nil:
		t.root = new
	case p.left == old:
		p.left = new
	default:
		p.right = new
	}
}

func isRed(n *goNode) bool { return n != nil && n.red }

func (t *goTree) insert(z *goNode) {
	var p *goNode
	for cur := t.root; cur != nil; {
		p = cur
		if z.key < cur.key {
			cur = cur.left
		} else {
			cur = cur.right
		}
	}
	z.left, z.right, z.parent, z.red = nil, nil, p, true
	switch {
	case p == nil:
		t.root = z
	case z.key < p.key:
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

func (t *goTree) remove(z *goNode) {
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

// TestGoBaselineTree keeps the baseline honest: in order after churn.
func TestGoBaselineTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var tr goTree
	nodes := make([]*goNode, 500)
	for i := range nodes {
		nodes[i] = &goNode{key: rng.Uint64N(100)}
		tr.insert(nodes[i])
	}
	for i := range 2000 {
		n := nodes[rng.IntN(len(nodes))]
		tr.remove(n)
		if i%2 == 0 {
			n.key = rng.Uint64N(100)
		}
		tr.insert(n)
	}
	var keys []uint64
	var walk func(n *goNode) int
	walk = func(n *goNode) int {
		if n == nil {
			return 1
		}
		if n.red && (isRed(n.left) || isRed(n.right)) {
			t.Fatal("red-red")
		}
		l := walk(n.left)
		keys = append(keys, n.key)
		if r := walk(n.right); r != l {
			t.Fatal("black heights differ")
		}
		if !n.red {
			l++
		}
		return l
	}
	walk(tr.root)
	if len(keys) != len(nodes) {
		t.Fatalf("%d keys, want %d", len(keys), len(nodes))
	}
	for i := 1; i < len(keys); i++ {
		if keys[i] < keys[i-1] {
			t.Fatal("out of order")
		}
	}
}
