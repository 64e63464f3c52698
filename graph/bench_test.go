package graph

import (
	"math/rand/v2"
	"testing"

	"github.com/userbpf/userbpf/internal/gotree"
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
	var t gotree.Tree
	nodes := make([]*gotree.Node, benchNodes)
	for i := range nodes {
		nodes[i] = &gotree.Node{Key: rng.Uint64()}
		t.Insert(nodes[i])
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := nodes[i%benchNodes]
		t.Remove(n)
		t.Insert(n)
	}
}
