package userbpf_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/loader/loadertest"
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
