package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/lock"
)

// membarrierCmdGlobal is MEMBARRIER_CMD_GLOBAL: the kernel waits for a
// synchronize_rcu()-style grace period on every CPU.
const membarrierCmdGlobal = 1

// Sync measures the synchronization layer: the value lock alone and under
// two-process contention, RCU read sections, Synchronize against the
// kernel's membarrier(MEMBARRIER_CMD_GLOBAL), and the allocator.
func Sync(env *Env) ([]Result, error) {
	path := filepath.Join(env.Dir, fmt.Sprintf("bench-sync-%d", os.Getpid()))
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		return nil, err
	}
	defer userbpf.RemoveRegion(path, true)
	defer r.Close()
	s := r.Shared()
	var res []Result
	add := func(x Result) { x.Suite = "sync"; res = append(res, x) }

	env.say("value lock, uncontended")
	off, err := s.Alloc(16)
	if err != nil {
		return nil, err
	}
	l := (*lock.SpinLock)(s.Pointer(off))
	h := s.Holder()
	add(Result{Name: "spin_lock_unlock", Unit: "ns", Target: "<= 20 ns",
		Value: perOp(7, func(n int) {
			for range n {
				l.Lock(h)
				l.Unlock()
			}
		})})

	env.say("value lock, two processes")
	pairs, share, err := contendedLock(env, r, off)
	if err != nil {
		return nil, err
	}
	add(Result{Name: "spin_lock_two_processes", Unit: "M pairs/s", Value: pairs / 1e6, Target: ">= 5 M pairs/s, no lost update",
		Note: fmt.Sprintf("child process took %.0f%% of the pairs; counter exact", 100*share)})

	env.say("RCU read section")
	d := r.RCU()
	rd, err := d.NewReader()
	if err != nil {
		return nil, err
	}
	add(Result{Name: "rcu_read_lock_unlock", Unit: "ns", Target: "<= 10 ns",
		Value: perOp(7, func(n int) {
			for range n {
				rd.Lock()
				rd.Unlock()
			}
		})})
	rd.Close()

	env.say("Synchronize vs membarrier(MEMBARRIER_CMD_GLOBAL)")
	syncP50, syncP99 := latencies(20000, d.Synchronize)
	var kernP50 float64
	var note string
	if _, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdGlobal, 0, 0); e != 0 {
		note = "membarrier unavailable: " + e.Error()
	} else {
		kernP50, _ = latencies(25, func() { unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdGlobal, 0, 0) })
	}
	x := Result{Name: "synchronize_no_readers_p50", Unit: "ns", Value: syncP50, Kernel: kernP50,
		Target: "<= 10 us median, >= 500x faster than the kernel", Note: note}
	if kernP50 > 0 {
		x.Ratio = kernP50 / syncP50
	}
	add(x)
	add(Result{Name: "synchronize_no_readers_p99", Unit: "ns", Value: syncP99})

	env.say("allocator")
	add(Result{Name: "alloc_free_64", Unit: "ns", Target: "<= 50 ns",
		Value: perOp(7, func(n int) {
			for range n {
				o, _ := s.Alloc(64)
				s.Free(o)
			}
		})})
	return res, nil
}

// contendedLock runs a child process and this one hammering the same value
// lock for a fixed time, each incrementing a plain counter under it, and
// returns total lock/unlock pairs per second. Both stop on a shared flag, so
// the whole window is contended. A lost update is an error.
//
// Value layout at off: lock word (4), counter (4), stop flag (4).
func contendedLock(env *Env, r *userbpf.Region, off uint64) (pairs, childShare float64, err error) {
	const window = 500 * time.Millisecond
	s := r.Shared()
	(*atomic.Uint32)(s.Pointer(off + 4)).Store(0)
	stop := (*atomic.Uint32)(s.Pointer(off + 8))
	stop.Store(0)
	cmd := env.Child("lock", s.Path(), strconv.FormatUint(off, 10))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		return 0, 0, fmt.Errorf("bench child did not start")
	}
	fmt.Fprintln(stdin, "go")
	start := time.Now()
	deadline := start.Add(window)
	mine := hammer(r, off, func(n uint64) bool { return n%1024 != 0 || time.Now().Before(deadline) })
	stop.Store(1)
	el := time.Since(start)
	if !sc.Scan() {
		return 0, 0, fmt.Errorf("bench child did not report its count")
	}
	theirs, perr := strconv.ParseUint(sc.Text(), 10, 64)
	if perr != nil {
		return 0, 0, fmt.Errorf("bench child: %q", sc.Text())
	}
	if got := (*atomic.Uint32)(s.Pointer(off + 4)).Load(); uint64(got) != uint32Of(mine+theirs) {
		return 0, 0, fmt.Errorf("lost updates under the value lock: counter %d, want %d", got, mine+theirs)
	}
	return float64(mine+theirs) / el.Seconds(), float64(theirs) / float64(mine+theirs), nil
}

func uint32Of(n uint64) uint64 { return uint64(uint32(n)) }

// hammer takes the lock at off while more(n) holds, incrementing the
// (non-atomic) counter word that follows it, and returns how many times.
func hammer(r *userbpf.Region, off uint64, more func(n uint64) bool) uint64 {
	s := r.Shared()
	l := (*lock.SpinLock)(s.Pointer(off))
	c := (*uint32)(s.Pointer(off + 4))
	h := s.Holder()
	n := uint64(0)
	for more(n) {
		l.Lock(h)
		*c++
		l.Unlock()
		n++
	}
	return n
}

// RunChild is the child side of a suite, run in a separate process.
func RunChild(args []string) error {
	if len(args) > 0 && args[0] == "ringbuf" {
		return runRingbufChild(args[1:])
	}
	if len(args) == 2 && args[0] == "maplock" {
		return runMapLockChild(args[1])
	}
	if len(args) != 3 || args[0] != "lock" {
		return fmt.Errorf("bench child: unknown arguments %q", args)
	}
	off, err := strconv.ParseUint(args[2], 10, 64)
	if err != nil {
		return fmt.Errorf("bench child: bad offset %q", args[2])
	}
	r, err := userbpf.OpenRegion(args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	stop := (*atomic.Uint32)(r.Shared().Pointer(off + 8))
	fmt.Println("ready")
	if !bufio.NewScanner(os.Stdin).Scan() {
		return fmt.Errorf("bench child: no go signal")
	}
	n := hammer(r, off, func(n uint64) bool { return n%1024 != 0 || stop.Load() == 0 })
	fmt.Println(n)
	return nil
}
