package gotree

import (
	"math/rand/v2"
	"testing"
)

// TestGoBaselineTree keeps the baseline honest: in order after churn.
func TestGoBaselineTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var tr Tree
	nodes := make([]*Node, 500)
	for i := range nodes {
		nodes[i] = &Node{Key: rng.Uint64N(100)}
		tr.Insert(nodes[i])
	}
	for i := range 2000 {
		n := nodes[rng.IntN(len(nodes))]
		tr.Remove(n)
		if i%2 == 0 {
			n.Key = rng.Uint64N(100)
		}
		tr.Insert(n)
	}
	var keys []uint64
	var walk func(n *Node) int
	walk = func(n *Node) int {
		if n == nil {
			return 1
		}
		if n.red && (isRed(n.left) || isRed(n.right)) {
			t.Fatal("red-red")
		}
		l := walk(n.left)
		keys = append(keys, n.Key)
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
