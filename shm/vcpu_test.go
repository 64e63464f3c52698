package shm

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/proctest"
)

// leaseBlock is the block the lease tests share with their children.
//
//	0  gate   u32  set by the parent just before it releases a CPU
//	8  result u64  set by a waiting child once leased: 1<<63 | gate<<32 | cpu
type leaseBlock struct {
	gate   atomic.Uint32
	_      uint32
	result atomic.Uint64
}

// The lease-hold child leases a CPU, says "leased ID", and releases it when
// told "release" on stdin ("released"), then detaches.
var _ = proctest.Register("lease-hold", func(args []string) error {
	r, err := childOpen(args)
	if err != nil {
		return err
	}
	c, err := r.LeaseCPU()
	if err != nil {
		return err
	}
	fmt.Printf("leased %d\n", c.ID())
	if err := waitStdin(bufio.NewReader(os.Stdin), "release"); err != nil {
		return err
	}
	c.Release()
	fmt.Println("released")
	return r.Close()
})

// The lease-wait child says "waiting ADDR" (ADDR: where it will sleep, the
// region's VCPUSeq futex word in its own address space), leases a CPU,
// records the gate it then sees in the block at args[1], says "leased ID
// gate=G", and holds the CPU until told "release". With args[2] "woken" it
// never wakes up by itself to look for dead holders: only a release's
// wake-up gets it a CPU.
var _ = proctest.Register("lease-wait", func(args []string) error {
	if len(args) > 2 && args[2] == "woken" {
		leaseFirstCheck, leaseMaxCheck = time.Hour, time.Hour
	}
	r, err := childOpen(args)
	if err != nil {
		return err
	}
	b := (*leaseBlock)(r.Pointer(parseU64(args[1])))
	fmt.Printf("waiting %#x\n", uintptr(unsafe.Pointer(&r.hdr.VCPUSeq)))
	c, err := r.LeaseCPU()
	if err != nil {
		return err
	}
	g := b.gate.Load()
	b.result.Store(1<<63 | uint64(g)<<32 | uint64(c.ID()))
	fmt.Printf("leased %d gate=%d\n", c.ID(), g)
	if err := waitStdin(bufio.NewReader(os.Stdin), "release"); err != nil {
		return err
	}
	c.Release()
	return r.Close()
})

// waitAsleepOn waits until a thread of process pid sleeps in futex(2) on
// addr (read from /proc/PID/task/*/syscall). It fails the test if early()
// becomes true first: the child got past the point where it had to sleep.
func waitAsleepOn(t *testing.T, pid int, addr string, early func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if early() {
			t.Fatal("the child leased a CPU while every CPU was leased")
		}
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			// "202 ADDR OP VAL ...": futex(ADDR, FUTEX_WAIT, ...).
			if fs := strings.Fields(string(b)); len(fs) > 2 && fs[0] == "202" && fs[1] == addr && fs[2] == "0x0" {
				return
			}
		}
		time.Sleep(100 * time.Microsecond) // polling a condition, not a delay
	}
	t.Fatalf("process %d never slept on %s", pid, addr)
}

func leaseBlockIn(t *testing.T, r *Region) (*leaseBlock, uint64) {
	t.Helper()
	off, err := r.Alloc(uint64(unsafe.Sizeof(leaseBlock{})))
	if err != nil {
		t.Fatal(err)
	}
	return (*leaseBlock)(r.Pointer(off)), off
}

// TestLeaseBlocksUntilRelease: two children lease both CPUs of a region; a
// third child's lease sleeps (proved by finding it asleep on the futex, and
// by it not having a CPU then) until the parent has one released, and then
// gets exactly that CPU. The sleeper never wakes up on its own, so only
// the release's futex wake-up can get it the CPU.
func TestLeaseBlocksUntilRelease(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit, CPUs: 2})
	b, boff := leaseBlockIn(t, r)
	holders := make([]*proctest.Child, 2)
	ins := make([]interface{ Write([]byte) (int, error) }, 2)
	ids := make([]int, 2)
	for i := range holders {
		c, in := startWithStdin(t, "lease-hold", path)
		holders[i], ins[i] = c, in
		if _, err := fmt.Sscanf(c.Line(t), "leased %d", &ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] == ids[1] || ids[0] < 0 || ids[0] > 1 || ids[1] < 0 || ids[1] > 1 {
		t.Fatalf("two children leased CPUs %v of 2", ids)
	}
	if n := r.LeasedCPUs(); n != 2 {
		t.Fatalf("LeasedCPUs = %d", n)
	}
	if c, ok := r.TryLeaseCPU(); ok {
		t.Fatalf("TryLeaseCPU got CPU %d while both were leased", c.ID())
	}

	w, win := startWithStdin(t, "lease-wait", path, fmt.Sprint(boff), "woken")
	var addr string
	if _, err := fmt.Sscanf(w.Line(t), "waiting %s", &addr); err != nil {
		t.Fatal(err)
	}
	waitAsleepOn(t, w.Cmd.Process.Pid, addr, func() bool { return b.result.Load() != 0 })
	if b.result.Load() != 0 {
		t.Fatal("the waiting child leased a CPU while both were leased")
	}
	b.gate.Store(1)
	tell(t, ins[0], "release")
	holders[0].Expect(t, "released")
	want := fmt.Sprintf("leased %d gate=1", ids[0])
	w.Expect(t, want)
	if r.LeasedCPUs() != 2 || r.Counter(CounterLeasesReaped).Load() != 0 {
		t.Fatalf("after the hand-over: %d leased, %d reaped", r.LeasedCPUs(), r.Counter(CounterLeasesReaped).Load())
	}
	tell(t, ins[1], "release")
	holders[1].Expect(t, "released")
	tell(t, win, "release")
	holders[0].Wait(t)
	holders[1].Wait(t)
	w.Wait(t)
	if n := r.LeasedCPUs(); n != 0 {
		t.Fatalf("%d CPUs still leased after everyone released", n)
	}
}

// TestLeaseOfDeadHolder: a child SIGKILLed while it holds a lease loses it
// to a child waiting for a CPU, which takes it back itself.
func TestLeaseOfDeadHolder(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit, CPUs: 2})
	b, boff := leaseBlockIn(t, r)
	mine, err := r.LeaseCPU()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Release()
	d, _ := startWithStdin(t, "lease-hold", path)
	var dead int
	if _, err := fmt.Sscanf(d.Line(t), "leased %d", &dead); err != nil {
		t.Fatal(err)
	}
	if dead == mine.ID() {
		t.Fatalf("child leased CPU %d, which the parent holds", dead)
	}
	w, win := startWithStdin(t, "lease-wait", path, fmt.Sprint(boff))
	var addr string
	if _, err := fmt.Sscanf(w.Line(t), "waiting %s", &addr); err != nil {
		t.Fatal(err)
	}
	waitAsleepOn(t, w.Cmd.Process.Pid, addr, func() bool { return b.result.Load() != 0 })
	d.Kill(t)
	w.Expect(t, fmt.Sprintf("leased %d gate=0", dead))
	if got := r.Counter(CounterLeasesReaped).Load(); got != 1 {
		t.Fatalf("cpu_leases_reaped = %d, want 1", got)
	}
	if got := r.Counter(CounterProcsReaped).Load(); got != 1 {
		t.Fatalf("processes_reaped = %d, want 1 (the waiter reaps the dead holder)", got)
	}
	tell(t, win, "release")
	w.Wait(t)
}

// TestLeaseReleasedOnClose: a process that detaches with a lease held
// gives it back (not counted as a reap).
func TestLeaseReleasedOnClose(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit, CPUs: 1})
	r2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.LeaseCPU(); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.TryLeaseCPU(); ok {
		t.Fatal("leased the only CPU twice")
	}
	r2.Close()
	c, ok := r.TryLeaseCPU()
	if !ok {
		t.Fatal("the CPU of a detached process was not given back")
	}
	c.Release()
	if r.Counter(CounterLeasesReaped).Load() != 0 {
		t.Fatal("a clean detach counted as a reaped lease")
	}
}

// TestLeaseExclusive: goroutines of one process lease CPUs; no CPU is ever
// held twice at once, and every lease is counted on its CPU.
func TestLeaseExclusive(t *testing.T) {
	const goroutines, leases = 8, 3000
	r, _ := newRegion(t, Options{SizeLimit: smallLimit, CPUs: 3})
	var busy [3]atomic.Int32
	var violations atomic.Int32
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range leases {
				c, err := r.LeaseCPU()
				if err != nil {
					t.Error(err)
					return
				}
				if busy[c.ID()].Add(1) != 1 {
					violations.Add(1)
				}
				runtime.Gosched() // let another goroutine try this CPU while it is held
				busy[c.ID()].Add(-1)
				c.Release()
			}
		}()
	}
	wg.Wait()
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d times a CPU was held twice", v)
	}
	var total uint64
	for i := range 3 {
		total += r.vcpu(i).Leases.Load()
	}
	if total != goroutines*leases {
		t.Fatalf("%d leases counted, want %d", total, goroutines*leases)
	}
	if r.LeasedCPUs() != 0 || r.hdr.VCPUWaiters.Load() != 0 {
		t.Fatalf("after the storm: %d leased, %d waiters", r.LeasedCPUs(), r.hdr.VCPUWaiters.Load())
	}
}

// The lease-count child leases a CPU args[2] times and each time adds one
// to that CPU's counter in the block at args[1] with a plain, non-atomic
// read-modify-write: only exclusive leases keep the sum exact.
var _ = proctest.Register("lease-count", func(args []string) error {
	r, err := childOpen(args)
	if err != nil {
		return err
	}
	counters := unsafe.Slice((*uint64)(r.Pointer(parseU64(args[1]))), r.NumCPU())
	n := int(parseU64(args[2]))
	for range n {
		c, err := r.LeaseCPU()
		if err != nil {
			return err
		}
		v := counters[c.ID()]
		for i := 0; i < 100; i++ { // widen the window a lost update needs
			spinSink.Add(1)
		}
		counters[c.ID()] = v + 1
		c.Release()
	}
	proctest.Ready("done")
	return r.Close()
})

var spinSink atomic.Uint64

// TestLeaseExclusiveAcrossProcesses: three processes share two CPUs; per-CPU
// counters updated without atomics under the lease come out exact.
func TestLeaseExclusiveAcrossProcesses(t *testing.T) {
	const procs, each = 3, 3000
	r, path := newRegion(t, Options{SizeLimit: smallLimit, CPUs: 2})
	off, err := r.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]*proctest.Child, procs)
	for i := range cs {
		cs[i] = proctest.Start(t, "lease-count", path, fmt.Sprint(off), fmt.Sprint(each))
	}
	for _, c := range cs {
		c.Expect(t, "done")
		c.Wait(t)
	}
	counters := unsafe.Slice((*uint64)(r.Pointer(off)), 2)
	if sum := counters[0] + counters[1]; sum != procs*each {
		t.Fatalf("per-CPU counters %v sum to %d, want %d: two processes held a CPU at once", counters, sum, procs*each)
	}
}
