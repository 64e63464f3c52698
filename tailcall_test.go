package userbpf_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/loader/loadertest"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/programs"
	"github.com/userbpf/userbpf/ringbuf"
)

// A tail call from a subprogram replaces the subprogram: the target's R0
// comes back to the subprogram's caller, which adds 1000. The kernel runs
// the same object the same way (when bpf(2) works).
func TestTailCallFromSubprogram(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, "testdata/tailcall.o")
	if err != nil {
		t.Fatal(err)
	}
	k0 := binary.NativeEndian.AppendUint32(nil, 0)
	if err := c.Maps["jumps"].Update(k0, binary.NativeEndian.AppendUint32(nil, c.Programs["target0"].ID()), maps.UpdateAny); err != nil {
		t.Fatal(err)
	}
	want := []uint64{1100, 1008, 1100, 1008}
	ctx := make([]byte, 64)
	var ours []uint64
	for range want {
		got, err := c.Programs["sub_entry"].Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, got)
	}
	if !slices.Equal(ours, want) {
		t.Fatalf("sub_entry returned %v, want %v", ours, want)
	}
	hits := make([]byte, 8)
	if err := c.Maps["hits"].Lookup(k0, hits, 0); err != nil || binary.NativeEndian.Uint64(hits) != 2 {
		t.Errorf("target0 ran %d times (%v), want 2", binary.NativeEndian.Uint64(hits), err)
	}

	if err := loadertest.KernelAvailable(); err != nil {
		t.Logf("kernel comparison skipped: %v", err)
		return
	}
	kc, err := ebpf.LoadCollection("testdata/tailcall.o")
	if err != nil {
		t.Fatalf("the kernel refuses tailcall.o: %v", err)
	}
	defer kc.Close()
	if err := kc.Maps["jumps"].Put(uint32(0), uint32(kc.Programs["target0"].FD())); err != nil {
		t.Fatal(err)
	}
	var kernel []uint64
	for range want {
		ret, _, err := kc.Programs["sub_entry"].Benchmark(ctx, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		kernel = append(kernel, uint64(ret))
	}
	if !slices.Equal(kernel, ours) {
		t.Errorf("kernel returned %v, userbpf %v", kernel, ours)
	}
}

// bpf_tail_call jumps through a PROG_ARRAY whose slots hold program IDs;
// an empty slot makes the call fail and the program go on.
func TestTailCall(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, "testdata/tailcall.o")
	if err != nil {
		t.Fatal(err)
	}
	jumps, entry := c.Maps["jumps"], c.Programs["entry"]
	set := func(slot uint32, p *programs.Program) {
		t.Helper()
		k, v := binary.NativeEndian.AppendUint32(nil, slot), binary.NativeEndian.AppendUint32(nil, p.ID())
		if err := jumps.Update(k, v, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	set(0, c.Programs["target0"])
	ctx := make([]byte, 64)
	want := []uint64{100, 7, 100, 7}
	for i, w := range want {
		if got, err := entry.Run(ctx); err != nil || got != w {
			t.Fatalf("run %d: %d, %v; want %d", i, got, err, w)
		}
	}
	set(1, c.Programs["target1"])
	for i, w := range []uint64{100, 101} {
		if got, err := entry.Run(ctx); err != nil || got != w {
			t.Fatalf("run %d after filling slot 1: %d, %v; want %d", i, got, err, w)
		}
	}
	bad := binary.NativeEndian.AppendUint32(nil, 9999)
	if err := jumps.Update([]byte{2, 0, 0, 0}, bad, maps.UpdateAny); err == nil {
		t.Error("a PROG_ARRAY accepted the ID of no program")
	}
	id := make([]byte, 4)
	if err := jumps.Lookup([]byte{1, 0, 0, 0}, id, 0); err != nil || binary.NativeEndian.Uint32(id) != c.Programs["target1"].ID() {
		t.Errorf("lookup returns the program's ID: %v %v", err, id)
	}
}

// bpf_trace_printk writes to the region's trace ring, which any process
// reads (userbpf prog tracelog).
func TestTracePrintk(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, "testdata/globals.o")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Programs["hello"].Run(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	g, err := programs.TraceRing(r.Shared(), r.RCU())
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ringbuf.NewReader(g.Map())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := rd.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rec.RawSample), "userbpf hello ") {
		t.Errorf("trace message %q", rec.RawSample)
	}
}

// A program drains a USER_RINGBUF user space wrote into, reading each
// sample through its dynptr.
func TestUserRingbufDrainWithDynptr(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, "testdata/userringbuf.o")
	if err != nil {
		t.Fatal(err)
	}
	g, err := ringbuf.Open(c.Maps["samples"])
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	want := uint64(0)
	for i := uint64(1); i <= 10; i++ {
		if err := g.Output(binary.NativeEndian.AppendUint64(nil, i), 0); err != nil {
			t.Fatal(err)
		}
		want += i
	}
	n, err := c.Programs["drain"].Run(make([]byte, 64))
	if err != nil || n != 10 {
		t.Fatalf("drain: %d, %v; want 10 samples", n, err)
	}
	for k := uint32(0); k < 2; k++ {
		v := make([]byte, 8)
		if err := c.Maps["sums"].Lookup(binary.NativeEndian.AppendUint32(nil, k), v, 0); err != nil {
			t.Fatal(err)
		}
		if got := binary.NativeEndian.Uint64(v); got != want {
			t.Errorf("sum %d (via %s) = %d, want %d", k, []string{"bpf_dynptr_read", "bpf_dynptr_data"}[k], got, want)
		}
	}
}

// RunRepeat runs a program many times under one CPU lease, re-entering
// its read-side section in batches; every run counts.
func TestRunRepeat(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := userbpf.LoadCollection(r, "testdata/spinlock_hash.o")
	if err != nil {
		t.Fatal(err)
	}
	p := c.Programs["lock_inc"]
	before, _ := p.Runs()
	if total, err := p.RunRepeat(make([]byte, 64), 600); err != nil || total != 600 {
		t.Fatalf("RunRepeat(600) = %d, %v; want the total 600", total, err)
	}
	if after, faults := p.Runs(); after-before != 600 || faults != 0 {
		t.Errorf("runs counted %d, faults %d; want 600 and 0", after-before, faults)
	}
	if total, err := p.RunRepeat(make([]byte, 64), 0); err != nil || total != 601 {
		t.Errorf("RunRepeat(0) runs once: %d, %v", total, err)
	}
}
