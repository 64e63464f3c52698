package rcu

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/shm"
)

// Tests that need more than one process run children through proctest: the
// test binary re-executes itself and runs a function registered by name.
func TestMain(m *testing.M) { proctest.Main(m) }

// startChild starts a child process running the function name. The child
// is killed if this process dies first (a test that times out does not run
// its cleanups), so no child outlives a failed run.
func startChild(t testing.TB, name string, args ...string) *proctest.Child {
	t.Helper()
	cmd := proctest.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return proctest.StartCmd(t, name, cmd)
}

// newRegion creates a region in a temporary directory and attaches one
// domain to it. Both are closed when the test ends.
func newRegion(t testing.TB) (*shm.Region, *Domain) {
	t.Helper()
	r, err := shm.Create(filepath.Join(t.TempDir(), "rcu.region"), shm.Options{SizeLimit: 256 << 20, CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := New(r)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("domain close: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("region close: %v", err)
		}
	})
	return r, d
}

// attach opens the region at path in a child process.
func attach(path string) (*shm.Region, *Domain, error) {
	r, err := shm.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return r, New(r), nil
}

// A control block is a small region block through which a test and its
// children talk: each word has one role, named below.
const (
	ctlPublished = iota // gen<<40 | offset of the current block (retire test)
	ctlStop             // set by the parent: children leave their loops
	ctlMarker           // set by a child at the end of its read-side section
	ctlGo               // set by the parent: the child may enter its section
	ctlRelease          // set by the parent: the child may leave its section
	ctlWords
)

func newCtl(t testing.TB, r *shm.Region) uint64 {
	t.Helper()
	off, err := r.Alloc(ctlWords * 8)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// word returns word i of the block at off.
func word(r *shm.Region, off uint64, i int) *atomic.Uint64 {
	return (*atomic.Uint64)(r.Pointer(off + uint64(i)*8))
}

func u64(x uint64) string { return strconv.FormatUint(x, 10) }

// childArgs parses a child's arguments: the region path, then offsets.
func childArgs(args []string, n int) (string, []uint64, error) {
	if len(args) != n+1 {
		return "", nil, fmt.Errorf("want %d arguments, got %q", n+1, args)
	}
	offs := make([]uint64, n)
	for i, a := range args[1:] {
		v, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return "", nil, err
		}
		offs[i] = v
	}
	return args[0], offs, nil
}

// checkAllFree fails unless the allocator is sound and every block of every
// carved span (and every run) is back on a free list: nothing leaked.
func checkAllFree(t testing.TB, r *shm.Region) {
	t.Helper()
	rep := r.Check()
	for _, p := range rep.Problems {
		t.Errorf("region check: %s", p)
	}
	if rep.Unpublished != 0 {
		t.Errorf("region check: %d unpublished spans", rep.Unpublished)
	}
	spans := rep.RunSpans
	for _, n := range rep.ClassSpans {
		spans += n
	}
	if total, free := spans*shm.SpanSize, rep.FreeBytes(); free != total {
		t.Errorf("region check: %d of %d heap bytes still allocated (free blocks per class %v, free run spans %d)",
			total-free, total, rep.FreeBlocks, rep.FreeRunSpans)
	}
}

// ownedSlots counts the reader slots held by tag.
func ownedSlots(d *Domain, tag uint32) int {
	n := 0
	for i := range d.w.Slots[:d.w.ReaderHigh.Load()] {
		if d.w.Slots[i].Owner.Load() == tag {
			n++
		}
	}
	return n
}

// scanf parses line with format and reports whether all of it matched.
func scanf(line, format string, args ...any) bool {
	n, err := fmt.Sscanf(line, format, args...)
	return err == nil && n == len(args)
}
