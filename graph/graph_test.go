package graph

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/userbpf/userbpf/shm"
)

// The test types: a value {lock u32, pad, rb root @8, list head @24} and
// an element {key u64 @0, rb node @8, list node @40, refcount @64}.
var testTable = &Table{Types: []Type{
	{Name: "value", Size: 40, Fields: []Field{
		{Kind: KindLock, Off: 0},
		{Kind: KindRBRoot, Off: 8, Elem: 1, NodeOff: 8},
		{Kind: KindListHead, Off: 24, Elem: 1, NodeOff: 40},
	}},
	{Name: "elem", Size: 72, Fields: []Field{
		{Kind: KindRBNode, Off: 8},
		{Kind: KindListNode, Off: 40},
		{Kind: KindRefcount, Off: 64},
	}},
}}

type fixture struct {
	h     *Heap
	table uint64
	value uint64
	tree  Root
	list  Root
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	r, err := shm.Create(filepath.Join(tb.TempDir(), "region"), shm.Options{SizeLimit: 1 << 30, CPUs: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	h := Of(r)
	toff, err := h.StoreTable(testTable)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := r.Alloc(40)
	if err != nil {
		tb.Fatal(err)
	}
	tbl, _ := h.Table(toff)
	return &fixture{h: h, table: toff, value: v,
		tree: RootOf(tbl, tbl.Types[0].Fields[1], v), list: RootOf(tbl, tbl.Types[0].Fields[2], v)}
}

func (f *fixture) key(node uint64, nodeOff uint32) uint64 {
	return *(*uint64)(f.h.ptr(node-uint64(nodeOff), 8, "key")) // checked as the tree checks its links
}

func (f *fixture) newElem(tb testing.TB, key uint64) uint64 {
	tb.Helper()
	o, err := f.h.New(f.table, 1)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := f.h.r.Bytes(o, 8)
	binary.LittleEndian.PutUint64(b, key)
	return o
}

func (f *fixture) less(a, b uint64) (bool, error) { return f.key(a, 8) < f.key(b, 8), nil }

// checkTree verifies the red-black invariants and returns the keys in order.
func (f *fixture) checkTree(t *testing.T) []uint64 {
	t.Helper()
	tr := &tree{h: f.h, root: (*rbRoot)(f.h.r.Pointer(f.tree.Off))}
	var height func(x, parent uint64) int
	height = func(x, parent uint64) int {
		if x == 0 {
			return 1
		}
		if tr.parent(x) != parent {
			t.Fatalf("node %#x: parent %#x, want %#x", x, tr.parent(x), parent)
		}
		if !tr.isBlack(x) && (!tr.isBlack(tr.n(x).Left) || !tr.isBlack(tr.n(x).Right)) {
			t.Fatalf("red node %#x has a red child", x)
		}
		l, r := height(tr.n(x).Left, x), height(tr.n(x).Right, x)
		if l != r {
			t.Fatalf("node %#x: black heights %d and %d", x, l, r)
		}
		if tr.isBlack(x) {
			l++
		}
		return l
	}
	if !tr.isBlack(tr.root.Root) {
		t.Fatal("red root")
	}
	height(tr.root.Root, 0)
	var keys []uint64
	if err := f.h.Walk(f.tree, func(o Object) bool {
		keys = append(keys, f.key(o.Off+8, 8))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	first, _ := f.h.RBFirst(f.tree)
	if len(keys) > 0 && f.key(first, 8) != keys[0] || len(keys) == 0 && first != 0 {
		t.Fatalf("leftmost is wrong")
	}
	return keys
}

// TestRBTreeModel adds and removes random keys and compares the tree with
// a sorted slice after every step, checking the red-black invariants; at
// the end every object is dropped and the heap has what it had before.
func TestRBTreeModel(t *testing.T) {
	f := newFixture(t)
	before := f.h.r.Stats()
	rng := rand.New(rand.NewPCG(1, 2))
	var model []uint64
	var nodes []uint64
	for step := 0; step < 3000; step++ {
		if len(nodes) == 0 || rng.IntN(3) > 0 {
			k := rng.Uint64N(200)
			o := f.newElem(t, k)
			ok, err := f.h.RBAdd(f.tree, o+8, f.less)
			if err != nil || !ok {
				t.Fatalf("add: %v %v", ok, err)
			}
			i, _ := slices.BinarySearch(model, k+1) // ties go right: after equal keys
			model = slices.Insert(model, i, k)
			nodes = append(nodes, o+8)
		} else {
			i := rng.IntN(len(nodes))
			n := nodes[i]
			got, err := f.h.RBRemove(f.tree, n)
			if err != nil || got != n {
				t.Fatalf("remove: %#x %v", got, err)
			}
			if again, _ := f.h.RBRemove(f.tree, n); again != 0 {
				t.Fatal("removed twice")
			}
			k := f.key(n, 8)
			j, _ := slices.BinarySearch(model, k)
			model = slices.Delete(model, j, j+1)
			nodes = slices.Delete(nodes, i, i+1)
			if err := f.h.Drop(n - 8); err != nil {
				t.Fatal(err)
			}
		}
		if step%50 == 0 || len(nodes) < 5 {
			if got := f.checkTree(t); !slices.Equal(got, model) {
				t.Fatalf("step %d: tree %v, model %v", step, got, model)
			}
		}
	}
	// The ties-go-right order: nodes with equal keys come out in insertion order.
	d, err := f.h.Detach(f.tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.h.Release(d); err != nil {
		t.Fatal(err)
	}
	if after := f.h.r.Stats(); after.UsedBytes != before.UsedBytes {
		t.Fatalf("heap: %d bytes used before, %d after", before.UsedBytes, after.UsedBytes)
	}
	if rep := f.h.r.Check(); len(rep.Problems) > 0 {
		t.Fatal(rep.Problems)
	}
}

func TestListAndRefcount(t *testing.T) {
	f := newFixture(t)
	before := f.h.r.Stats()
	var objs []uint64
	for i := range 6 {
		o := f.newElem(t, uint64(i))
		objs = append(objs, o)
		if ok, err := f.h.ListPush(f.list, o+40, i%2 == 0); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	var got []uint64
	f.h.Walk(f.list, func(o Object) bool { got = append(got, f.key(o.Off+40, 40)); return true })
	if want := []uint64{4, 2, 0, 1, 3, 5}; !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	// A node in a list cannot be pushed again.
	if ok, _ := f.h.ListPush(f.list, objs[0]+40, true); ok {
		t.Fatal("pushed a node twice")
	}
	// A second reference puts the same object in the tree as well.
	if ok, err := f.h.Acquire(objs[3]); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := f.h.RBAdd(f.tree, objs[3]+8, f.less); !ok || err != nil {
		t.Fatal(ok, err)
	}
	n, _ := f.h.ListPop(f.list, false)
	if f.key(n, 40) != 5 {
		t.Fatalf("pop back: key %d", f.key(n, 40))
	}
	f.h.Drop(n - 40)
	// Draining both containers frees everything, objs[3] once both let go.
	for _, rt := range []Root{f.list, f.tree} {
		d, err := f.h.Detach(rt)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.h.Release(d); err != nil {
			t.Fatal(err)
		}
	}
	if after := f.h.r.Stats(); after.UsedBytes != before.UsedBytes {
		t.Fatalf("heap: %d bytes used before, %d after", before.UsedBytes, after.UsedBytes)
	}
}

// TestCorruptLinks: roots and nodes that point anywhere give ErrCorrupt,
// never a fault.
func TestCorruptLinks(t *testing.T) {
	f := newFixture(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		var objs []uint64
		for k := range 5 {
			o := f.newElem(t, uint64(k))
			objs = append(objs, o)
			f.h.RBAdd(f.tree, o+8, f.less)
			f.h.ListPush(f.list, o+40, false)
			f.h.Acquire(o)
		}
		// Scribble one word of the value or a node.
		targets := []uint64{f.value + 8, f.value + 16, f.value + 24, f.value + 32}
		for _, o := range objs {
			targets = append(targets, o+8, o+16, o+24, o+32, o+40, o+48, o+56, o-24, o-16)
		}
		w := targets[rng.IntN(len(targets))]
		b, _ := f.h.r.Bytes(w, 8)
		vals := []uint64{1, 8, 1 << 40, ^uint64(0), objs[0], objs[1] + 8, f.value, rng.Uint64()}
		binary.LittleEndian.PutUint64(b, vals[rng.IntN(len(vals))])
		_, _ = f.h.RBFirst(f.tree)
		n, _ := f.h.RBRemove(f.tree, objs[2]+8)
		_ = n
		f.h.RBAdd(f.tree, f.newElem(t, 9)+8, f.less)
		f.h.ListPop(f.list, i%2 == 0)
		f.h.Walk(f.tree, func(Object) bool { return true })
		for _, rt := range []Root{f.tree, f.list} {
			d, err := f.h.Detach(rt)
			if err != nil {
				t.Fatal(err) // the root itself is always in the heap
			}
			if err := f.h.Release(d); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("release: %v", err)
			}
		}
	}
}
