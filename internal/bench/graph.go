package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/internal/gotree"
)

// graphNodes is the size of the tree the graph suite churns.
const graphNodes = 10_000

// graphBenchTable is a value holding a lock and an rbtree of elems, and
// the elem: a key and its node.
var graphBenchTable = &graph.Table{Types: []graph.Type{
	{Name: "value", Size: 24, Fields: []graph.Field{
		{Kind: graph.KindLock, Off: 0},
		{Kind: graph.KindRBRoot, Off: 8, Elem: 1, NodeOff: 8},
	}},
	{Name: "elem", Size: 40, Fields: []graph.Field{
		{Kind: graph.KindRBNode, Off: 8},
	}},
}}

// Graph measures the region-resident red-black tree (package graph: the
// bpf_rbtree_* kfuncs' engine): one remove and one add in a tree of 10 000
// nodes, against a Go pointer red-black tree doing the same (there is no
// kernel figure: the kernel offers no way to time its rbtree alone).
func Graph(env *Env) ([]Result, error) {
	path := filepath.Join(env.Dir, fmt.Sprintf("bench-graph-%d", os.Getpid()))
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		return nil, err
	}
	defer userbpf.RemoveRegion(path, true)
	defer r.Close()
	sh := r.Shared()
	h := graph.Of(sh)
	toff, err := h.StoreTable(graphBenchTable)
	if err != nil {
		return nil, err
	}
	value, err := sh.Alloc(24)
	if err != nil {
		return nil, err
	}
	tb, err := h.Table(toff)
	if err != nil {
		return nil, err
	}
	root := graph.RootOf(tb, tb.Types[0].Fields[1], value)
	key := func(node uint64) uint64 { return *(*uint64)(sh.Pointer(node - 8)) }
	less := func(a, b uint64) (bool, error) { return key(a) < key(b), nil }

	env.say("rbtree in the region")
	rng := rand.New(rand.NewPCG(5, 6))
	nodes := make([]uint64, graphNodes)
	for i := range nodes {
		o, err := h.New(toff, 1)
		if err != nil {
			return nil, err
		}
		*(*uint64)(sh.Pointer(o)) = rng.Uint64()
		nodes[i] = o + 8
		if ok, err := h.RBAdd(root, nodes[i], less); !ok || err != nil {
			return nil, fmt.Errorf("graph bench: add: %v %v", ok, err)
		}
	}
	var runErr error
	i := 0
	ours := cpuPerOp(5, func(n int) {
		for range n {
			nd := nodes[i%graphNodes]
			i++
			if got, err := h.RBRemove(root, nd); got != nd || err != nil {
				runErr = fmt.Errorf("graph bench: remove: %v", err)
				return
			}
			if _, err := h.RBAdd(root, nd, less); err != nil {
				runErr = err
				return
			}
		}
	})
	if runErr != nil {
		return nil, runErr
	}

	env.say("Go pointer rbtree")
	rng = rand.New(rand.NewPCG(5, 6))
	var t gotree.Tree
	gn := make([]*gotree.Node, graphNodes)
	for i := range gn {
		gn[i] = &gotree.Node{Key: rng.Uint64()}
		t.Insert(gn[i])
	}
	j := 0
	base := cpuPerOp(5, func(n int) {
		for range n {
			nd := gn[j%graphNodes]
			j++
			t.Remove(nd)
			t.Insert(nd)
		}
	})
	return []Result{
		{Suite: "graph", Name: "rbtree_remove_add_10k", Unit: "ns/op", Value: ours,
			Note: fmt.Sprintf("%.1fx the Go baseline's time: every link is a region offset, bounds-checked before use (a peer process may have written it)", ours/base)},
		{Suite: "graph", Name: "rbtree_remove_add_10k_go_baseline", Unit: "ns/op", Value: base,
			Note: "internal/gotree: a textbook red-black tree of Go pointers, the same keys"},
	}, nil
}
