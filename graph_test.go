package userbpf_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/loader/loadertest"
	"github.com/userbpf/userbpf/vm"
)

// graphSequence is the order the differential test runs graph.o's
// programs in (state carries over from one to the next).
var graphSequence = []string{
	"rbtree_first_key", "rbtree_add", "rbtree_first_key", "rbtree_add", "rbtree_drain", "rbtree_first_key",
	"list_push", "list_pop", "list_push", "list_push", "list_pop", "list_pop", "list_pop",
	"refcount", "refcount", "remove_absent", "array_add", "array_add", "array_add", "new_drop",
}

func runGraphVM(t *testing.T) []uint32 {
	t.Helper()
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c, err := userbpf.LoadCollection(r, filepath.Join("testdata", "graph.o"))
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	ctx := make([]byte, 64)
	for _, name := range graphSequence {
		r0, err := c.Programs[name].Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, uint32(r0))
	}
	return out
}

// runGraphKernel loads graph.o into the running kernel with bpftool
// (libbpf loads the object's whole BTF, which the kernel needs to resolve
// the __contains tags; cilium/ebpf gives a map only its key and value
// types) and runs the sequence with BPF_PROG_TEST_RUN.
func runGraphKernel(t *testing.T) []uint32 {
	t.Helper()
	if err := loadertest.KernelAvailable(); err != nil {
		t.Skipf("no kernel to compare with: %v", err)
	}
	bpftool, err := exec.LookPath("bpftool")
	if err != nil {
		t.Skip("no bpftool to load the object with")
	}
	pin := fmt.Sprintf("/sys/fs/bpf/userbpf_graph_%d", os.Getpid())
	if out, err := exec.Command(bpftool, "prog", "loadall", filepath.Join("testdata", "graph.o"), pin).CombinedOutput(); err != nil {
		t.Fatalf("bpftool prog loadall: %v\n%s", err, out)
	}
	defer os.RemoveAll(pin)
	data := filepath.Join(t.TempDir(), "pkt")
	if err := os.WriteFile(data, make([]byte, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, name := range graphSequence {
		b, err := exec.Command(bpftool, "prog", "run", "pinned", filepath.Join(pin, name), "data_in", data).CombinedOutput()
		if err != nil {
			t.Fatalf("kernel %s: %v\n%s", name, err, b)
		}
		var r0 uint32
		if _, err := fmt.Sscanf(string(b), "Return value: %d", &r0); err != nil {
			t.Fatalf("kernel %s: %q: %v", name, b, err)
		}
		out = append(out, r0)
	}
	return out
}

// TestGraphDifferential runs graph.o's programs (rbtree add/first/remove
// with duplicate keys, list push/pop at both ends, refcounted objects in a
// tree and a list, -EINVAL on a second add, remove of an absent node, a
// tree in an array's value, new+drop) in the same order on the running
// kernel and on userbpf and compares every return value (the drains
// return order-dependent hashes of what they removed).
func TestGraphDifferential(t *testing.T) {
	ours := runGraphVM(t)
	kernel := runGraphKernel(t)
	for i, name := range graphSequence {
		if ours[i] != kernel[i] {
			t.Errorf("%d %s: userbpf %d, kernel %d", i, name, int32(ours[i]), int32(kernel[i]))
		}
	}
	t.Logf("results: %v", ours)
}

// usedBytes is the region heap in use.
func usedBytes(r *userbpf.Region) uint64 { return r.Shared().Stats().UsedBytes }

// TestGraphNested runs graph_nested.o (beyond the kernel: objects of a
// tree hold a lock and a tree of their own): build, take the objects out
// one by one in order, check the hashes, then build again and overwrite
// the global value from user space, which drains both levels; a run that
// faults while owning objects drops them. The heap ends where it began.
func TestGraphNested(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, filepath.Join("testdata", "graph_nested.o"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := make([]byte, 64)
	run := func(name string) uint32 {
		t.Helper()
		r0, err := c.Programs[name].Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return uint32(r0)
	}
	base := usedBytes(r)
	if got := run("nested_build"); got != 0 {
		t.Fatalf("nested_build returned %d", got)
	}
	// User space walks both levels under the locks.
	data := c.Maps[".data.N"]
	root := data.GraphTable().Types[0].Roots()[0].Off
	var outer, inner []uint64
	err = data.WithLock(make([]byte, 4), func(v []byte) error {
		for obj, err := range data.Walk(v, root) {
			if err != nil {
				return err
			}
			outer = append(outer, binary.NativeEndian.Uint64(obj))
			for in, err := range data.WalkObject(obj, 16) {
				if err != nil {
					return err
				}
				inner = append(inner, binary.NativeEndian.Uint64(in))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 3, 4}; !slices.Equal(outer, want) {
		t.Fatalf("outer keys %v, want %v", outer, want)
	}
	if len(inner) != 20 || !slices.IsSorted(inner) || inner[0] != 100 || inner[19] != 404 {
		t.Fatalf("inner keys %v", inner)
	}
	for k := uint32(1); k <= 4; k++ {
		var want uint32
		for i := uint32(0); i < 5; i++ {
			want = want*31 + k*100 + i
		}
		if got := run("nested_take"); got != want {
			t.Fatalf("nested_take %d: %d, want %d", k, got, want)
		}
	}
	if got := run("nested_take"); got != 0 {
		t.Fatalf("nested_take on an empty tree: %d", got)
	}
	if u := usedBytes(r); u != base {
		t.Fatalf("after taking everything: %d bytes used, %d before", u, base)
	}
	// Overwriting the value drains the outer tree and every inner one.
	run("nested_build")
	if usedBytes(r) == base {
		t.Fatal("nested_build allocated nothing")
	}
	if err := data.Update(make([]byte, 4), make([]byte, data.ValueSize()), 0); err != nil {
		t.Fatal(err)
	}
	if u := usedBytes(r); u != base {
		t.Fatalf("after the overwrite: %d bytes used, %d before", u, base)
	}
	// nested_fault reads scratch[ctx->len]: in bounds it runs to the end
	// and drops what it built itself…
	if r0, err := c.Programs["nested_fault"].Run(ctx); err != nil || r0 != 0 {
		t.Fatalf("nested_fault with len 0: %d, %v", r0, err)
	}
	if u := usedBytes(r); u != base {
		t.Fatalf("after nested_fault ran clean: %d bytes used, %d before", u, base)
	}
	// …out of bounds (an index only the run time sees) it faults while
	// owning an object with a filled inner tree: aborted, dropped.
	bad := make([]byte, len(ctx))
	binary.NativeEndian.PutUint32(bad, 1<<20)
	if _, err := c.Programs["nested_fault"].Run(bad); !errors.Is(err, vm.ErrMemory) {
		t.Fatalf("nested_fault with len 1<<20: %v, want a memory fault", err)
	}
	if u := usedBytes(r); u != base {
		t.Fatalf("after the fault: %d bytes used, %d before", u, base)
	}
	if rep := r.Shared().Check(); len(rep.Problems) > 0 {
		t.Fatal(rep.Problems)
	}
}

// TestGraphHashDrain: deleting or replacing a hash element drains its
// tree, and so does a program's replacement; nothing leaks.
func TestGraphHashDrain(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, filepath.Join("testdata", "graph_nested.o"))
	if err != nil {
		t.Fatal(err)
	}
	base := usedBytes(r)
	for range 8 {
		if r0, err := c.Programs["hash_add"].Run(make([]byte, 64)); err != nil || r0 != 0 {
			t.Fatal(r0, err)
		}
	}
	h := c.Maps["htrees"]
	count := func(k uint32) int {
		n := 0
		key := binary.NativeEndian.AppendUint32(nil, k)
		err := h.WithLock(key, func(v []byte) error {
			for _, err := range h.Walk(v, 8) {
				if err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for k := range uint32(4) {
		if n := count(k); n != 6 {
			t.Fatalf("key %d holds %d nodes, want 6", k, n)
		}
	}
	// A copy shows no container words; writing one back changes nothing.
	v := make([]byte, h.ValueSize())
	if err := h.Lookup(binary.NativeEndian.AppendUint32(nil, 1), v, 0); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v, make([]byte, len(v))) {
		t.Fatalf("lookup copied special fields: %x", v)
	}
	if err := h.Delete(binary.NativeEndian.AppendUint32(nil, 0)); err != nil {
		t.Fatal(err)
	}
	if err := h.Update(binary.NativeEndian.AppendUint32(nil, 1), v, 0); err != nil {
		t.Fatal(err)
	}
	if n := count(1); n != 0 {
		t.Fatalf("replaced element holds %d nodes", n)
	}
	for _, k := range []uint32{1, 2, 3} {
		if err := h.Delete(binary.NativeEndian.AppendUint32(nil, k)); err != nil {
			t.Fatal(err)
		}
	}
	if u := usedBytes(r); u != base {
		t.Fatalf("%d bytes used, %d before", u, base)
	}
}

// addProcess opens the stored program rbtree_add and runs it n times.
var _ = proctest.Register("graph-add", func(args []string) error {
	r, err := userbpf.OpenRegion(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Program("rbtree_add")
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(args[1])
	for range n {
		if r0, err := p.Run(make([]byte, 64)); err != nil || r0 != 0 {
			return fmt.Errorf("rbtree_add: %d, %v", r0, err)
		}
	}
	return nil
})

// TestGraphMultiProcess: two processes add to the tree in .data.A through
// the program while this one walks it under the lock, again and again:
// every walk sees a sorted tree. At the end the tree holds every node;
// overwriting the value drains it and the heap is back where it started.
func TestGraphMultiProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r")
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, filepath.Join("testdata", "graph.o"))
	if err != nil {
		t.Fatal(err)
	}
	base := usedBytes(r)
	const procs, runs = 2, 40
	var kids []*proctest.Child
	for range procs {
		kids = append(kids, proctest.Start(t, "graph-add", path, strconv.Itoa(runs)))
	}
	data := c.Maps[".data.A"]
	root := data.GraphTable().Types[0].Roots()[0].Off
	walk := func() int {
		var keys []int64
		err := data.WithLock(make([]byte, 4), func(v []byte) error {
			for obj, err := range data.Walk(v, root) {
				if err != nil {
					return err
				}
				keys = append(keys, int64(binary.NativeEndian.Uint64(obj)))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(keys) {
			t.Fatalf("walk saw an unsorted tree: %v", keys)
		}
		return len(keys)
	}
	walks := 0
	for done := false; !done; walks++ {
		done = walk() == procs*runs*24
		if walks > 1e6 {
			t.Fatal("the children never finished")
		}
	}
	for _, k := range kids {
		k.Wait(t)
	}
	t.Logf("%d walks while %d processes added %d nodes", walks, procs, procs*runs*24)
	if err := data.Update(make([]byte, 4), make([]byte, data.ValueSize()), 0); err != nil {
		t.Fatal(err)
	}
	if n := walk(); n != 0 {
		t.Fatalf("%d nodes after the overwrite", n)
	}
	if u := usedBytes(r); u != base {
		t.Fatalf("%d bytes used, %d before", u, base)
	}
}

// TestGraphCorruptRoot: a peer scribbles offsets into the root words of
// .data.A (through the value's memory, as a buggy process could); the
// programs that use the tree fail with an error naming the corruption and
// never crash, and the lock is released after every failed run.
func TestGraphCorruptRoot(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, filepath.Join("testdata", "graph.o"))
	if err != nil {
		t.Fatal(err)
	}
	data := c.Maps[".data.A"]
	root := data.GraphTable().Types[0].Roots()[0].Off
	ctx := make([]byte, 64)
	bad := []uint64{1, 8, 0x10, 1 << 40, ^uint64(0) &^ 7, uint64(data.ValueSize())}
	for i, word := range bad {
		for half := uint32(0); half < 16; half += 8 {
			if _, err := c.Programs["rbtree_add"].Run(ctx); err != nil {
				t.Fatal(err)
			}
			err := data.WithLock(make([]byte, 4), func(v []byte) error {
				binary.NativeEndian.PutUint64(v[root+half:], word)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			corrupt := 0
			for _, p := range []string{"rbtree_first_key", "rbtree_drain", "rbtree_add"} {
				_, err := c.Programs[p].Run(ctx)
				switch {
				case errors.Is(err, graph.ErrCorrupt):
					corrupt++
				case err != nil:
					t.Fatalf("%#x at +%d: %s: %v", word, half, p, err)
				}
			}
			// The walk reports it too, and the lock is free again.
			err = data.WithLock(make([]byte, 4), func(v []byte) error {
				for _, err := range data.Walk(v, root) {
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil && !errors.Is(err, graph.ErrCorrupt) {
				t.Fatalf("walk: %v", err)
			}
			if err != nil {
				corrupt++
			}
			if corrupt == 0 {
				t.Errorf("%#x at +%d: nobody noticed", word, half)
			}
			_ = i
			// Reset for the next round (the nodes the scribble cut off leak).
			if err := data.Update(make([]byte, 4), make([]byte, data.ValueSize()), 0); err != nil {
				t.Fatal(err)
			}
			data.WithLock(make([]byte, 4), func(v []byte) error { clear(v[root : root+16]); return nil })
		}
	}
}

// A map of the region that an object would reuse by name must hold the
// same graph containers: the same value without them (or with others) is
// ErrIncompatible, since drains and lock checks follow the region's map.
func TestGraphReuseNeedsTheSameContainers(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	obj := filepath.Join("testdata", "graph.o")
	spec, err := loader.ParseFile(obj, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ms := range spec.Maps {
		if ms.Spec.Graph == nil {
			continue
		}
		s := ms.Spec
		s.Graph = nil // the same value, without its containers
		m, err := r.CreateMap(s)
		if err != nil {
			t.Fatalf("create %s without containers: %v", s.Name, err)
		}
		m.Close()
		found = true
		break
	}
	if !found {
		t.Fatal("graph.o has no map with graph containers")
	}
	if _, err := userbpf.LoadCollection(r, obj); !errors.Is(err, loader.ErrIncompatible) {
		t.Fatalf("load over a map without the containers: %v, want ErrIncompatible", err)
	}
}
