package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/examples"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/ringbuf"
)

// The demo object's layout (examples/demo.c).
const (
	demoProgram    = "demo_run"
	demoEventEvery = 64 // EVENT_EVERY: one ring event per this many runs
	demoEventSize  = 16 // struct event
	// struct stats word offsets
	statCounter, statRuns, statProduced, statDropped, statMisses = 0, 8, 16, 24, 32
	statsSize                                                    = 40
	lockedCountOff                                               = 8 // struct locked_value.count
)

// demoCheck is one expected-vs-observed total of the report.
type demoCheck struct {
	Name     string `json:"name"`
	What     string `json:"what"`
	Expected uint64 `json:"expected"`
	Observed uint64 `json:"observed"`
	OK       bool   `json:"ok"`
}

// demoReport is what `userbpf demo` prints.
type demoReport struct {
	Region          string      `json:"region"`
	Workers         int         `json:"workers"`
	Seconds         float64     `json:"seconds"`
	ProgramRuns     uint64      `json:"program_runs"`
	RunsPerSecond   float64     `json:"runs_per_second"`
	LockedAdds      uint64      `json:"user_locked_adds"`
	AtomicAdds      uint64      `json:"user_atomic_adds"`
	Flips           uint64      `json:"double_buffer_flips"`
	SyncMedianNs    int64       `json:"synchronize_median_ns"`
	SyncMaxNs       int64       `json:"synchronize_max_ns"`
	EventsReceived  uint64      `json:"events_received"`
	EventsDropped   uint64      `json:"events_dropped_ring_full"`
	Checks          []demoCheck `json:"checks"`
	AllChecksPassed bool        `json:"all_checks_passed"`
	WallSeconds     float64     `json:"wall_seconds"`
}

func demoCmd(g *globals) *cobra.Command {
	var (
		workers int
		seconds float64
		dir     string
	)
	c := &cobra.Command{
		Use:   "demo [--workers N] [--seconds S] [--dir D]",
		Short: "run the example program in several processes against maps user space uses at once",
		Long: `Create a scratch region, load the embedded example object (examples/demo.c), and
start worker processes that run its program as fast as they can while this
process, at the same time:

  - takes the bpf_spin_lock inside an LRU hash value (the kernel refuses one
    there) and adds to the counter it guards, as the program does;
  - adds to a counter of a BPF_F_MMAPABLE array with atomics, as the program does;
  - flips an ARRAY_OF_MAPS double buffer, waits one grace period
    (Region.Synchronize) and drains the buffer the programs stopped using;
  - consumes the ring-buffer events the program writes.

At the end every total is checked: what the programs and user space added must
be exactly what the maps hold. Exits 1 if any total is off. The region is removed.`,
		Example: "  userbpf demo\n  userbpf demo --workers 4 --seconds 5\n  userbpf -j demo",
		Args:    cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if workers < 1 || workers > 256 {
				return usageError{fmt.Errorf("--workers %d: want 1 to 256", workers)}
			}
			if seconds <= 0 || seconds > 3600 {
				return usageError{fmt.Errorf("--seconds %g: want more than 0 and at most 3600", seconds)}
			}
			quiet := g.json || g.pretty
			rep, err := runDemo(workers, time.Duration(seconds*float64(time.Second)), dir, func(format string, a ...any) {
				if !quiet {
					fmt.Fprintf(os.Stderr, format, a...)
				}
			})
			if err != nil {
				return err
			}
			emit(g, rep, func() { printDemo(rep) })
			if !rep.AllChecksPassed {
				if quiet {
					os.Exit(1) // the JSON report says which total is off
				}
				return errors.New("demo: a total is off (see the report)")
			}
			return nil
		},
	}
	c.Flags().IntVar(&workers, "workers", 2, "worker processes running the program")
	c.Flags().Float64Var(&seconds, "seconds", 3, "how long the workers run")
	c.Flags().StringVar(&dir, "dir", "", "directory for the scratch region (default /dev/shm/userbpf, else the temp directory)")
	return c
}

// demoRegion creates the scratch region in dir, or when dir is empty in
// /dev/shm/userbpf and, if that fails, in os.TempDir().
func demoRegion(dir string, cpus int) (*userbpf.Region, string, error) {
	name := fmt.Sprintf("demo-%d", os.Getpid())
	opts := userbpf.RegionOptions{SizeLimit: 1 << 30, CPUs: cpus}
	if dir != "" {
		path := filepath.Join(dir, name)
		r, err := userbpf.CreateRegion(path, opts)
		return r, path, err
	}
	path := userbpf.RegionPath(name)
	r, err := userbpf.CreateRegion(path, opts)
	if err == nil {
		return r, path, nil
	}
	path2 := filepath.Join(os.TempDir(), name)
	r, err2 := userbpf.CreateRegion(path2, opts)
	if err2 != nil {
		return nil, "", fmt.Errorf("%w (and in %s: %v)", err, os.TempDir(), err2)
	}
	return r, path2, nil
}

// demoLoad writes the embedded object to a temporary file and loads it.
func demoLoad(r *userbpf.Region) (*userbpf.Collection, error) {
	f, err := os.CreateTemp("", "userbpf-demo-*.o")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(examples.Demo); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return userbpf.LoadCollection(r, f.Name())
}

func runDemo(workers int, dur time.Duration, dir string, progress func(string, ...any)) (rep *demoReport, err error) {
	wallStart := time.Now()
	r, path, err := demoRegion(dir, max(runtime.NumCPU(), workers+1))
	if err != nil {
		return nil, err
	}
	defer func() {
		r.Close()
		if rmErr := userbpf.RemoveRegion(path, true); rmErr != nil && err == nil {
			err = fmt.Errorf("remove the demo region: %w", rmErr)
		}
	}()
	coll, err := demoLoad(r)
	if err != nil {
		return nil, fmt.Errorf("load the demo object: %w", err)
	}
	mp := func(name string) (*maps.Map, error) {
		m, ok := coll.Maps[name]
		if !ok {
			return nil, fmt.Errorf("the demo object has no map %q", name)
		}
		return m, nil
	}
	var locked, stats, events, buffers, bufA, bufB *maps.Map
	for _, p := range []struct {
		m    **maps.Map
		name string
	}{{&locked, "locked"}, {&stats, "stats"}, {&events, "events"}, {&buffers, "buffers"}, {&bufA, "buf_a"}, {&bufB, "buf_b"}} {
		if *p.m, err = mp(p.name); err != nil {
			return nil, err
		}
	}
	zero := make([]byte, 4)
	// The locked value exists before the programs run (they count a miss
	// otherwise).
	if err := locked.Update(zero, make([]byte, 16), maps.UpdateAny); err != nil {
		return nil, err
	}
	inner := [2]*maps.Map{bufA, bufB}
	active := 0 // slot 0 holds buf_a (demo.c's initializer)

	// Ring-buffer consumer.
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var received, badEvents atomic.Uint64
	readCtx, stopRead := context.WithCancel(context.Background())
	defer stopRead()
	readDone := make(chan error, 1)
	go func() {
		var rec ringbuf.Record
		for {
			if err := rd.ReadInto(readCtx, &rec); err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, ringbuf.ErrClosed) {
					err = nil
				}
				readDone <- err
				return
			}
			if len(rec.RawSample) != demoEventSize || binary.NativeEndian.Uint64(rec.RawSample)%demoEventEvery != 0 {
				badEvents.Add(1)
			}
			received.Add(1)
		}
	}()

	// Workers.
	progress("userbpf demo: region %s, %d worker processes for %s\n", path, workers, dur)
	type worker struct {
		cmd      *exec.Cmd
		out, err bytes.Buffer
	}
	ws := make([]*worker, workers)
	defer func() {
		// Only matters when the controller gives up early: workers still
		// running are stopped (Kill on a reaped process is a no-op error).
		for _, w := range ws {
			if w != nil && w.cmd.Process != nil {
				w.cmd.Process.Kill()
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{cmd: demoChildCommand(path, dur)}
		w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.err
		if err := w.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker %d: %w", i, err)
		}
		ws[i] = w
	}
	workStart := time.Now()
	waitErrs := make([]error, workers)
	for i, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); waitErrs[i] = w.cmd.Wait() }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// The controller's share of the work, while the workers run.
	var lockAdds, atomicAdds, flips, drained uint64
	var syncs []time.Duration
	// late counts what reached a buffer after it was drained, while it was
	// not in the outer map: nothing may, once a grace period has passed.
	var late uint64
	flip := func() error {
		next := 1 - active
		v, err := inner[next].Atomic(zero, 0, 8, maps.AtomicXchg, 0, 0)
		if err != nil {
			return fmt.Errorf("check the idle buffer: %w", err)
		}
		late += v
		id := make([]byte, 4)
		binary.NativeEndian.PutUint32(id, inner[next].ID())
		if err := buffers.Update(zero, id, maps.UpdateAny); err != nil {
			return fmt.Errorf("flip the double buffer: %w", err)
		}
		old := inner[active]
		active = next
		flips++
		t := time.Now()
		r.Synchronize()
		syncs = append(syncs, time.Since(t))
		v, err = old.Atomic(zero, 0, 8, maps.AtomicXchg, 0, 0)
		if err != nil {
			return fmt.Errorf("drain the double buffer: %w", err)
		}
		drained += v
		return nil
	}
	addOne := func(v []byte) error {
		c := v[lockedCountOff : lockedCountOff+8]
		binary.NativeEndian.PutUint64(c, binary.NativeEndian.Uint64(c)+1)
		return nil
	}
	statWord := func(off int) uint64 {
		v := make([]byte, statsSize)
		if stats.Lookup(zero, v, 0) != nil {
			return 0
		}
		return binary.NativeEndian.Uint64(v[off:])
	}
	nextFlip, nextProgress := time.Now(), time.Now().Add(time.Second)
	giveUp := time.Now().Add(dur + 30*time.Second)
	running := true
	for running {
		select {
		case <-done:
			running = false
			continue
		default:
		}
		if time.Now().After(giveUp) {
			return nil, fmt.Errorf("the workers did not finish within 30s of the %s they were given", dur)
		}
		if err := locked.WithLock(zero, addOne); err != nil {
			return nil, fmt.Errorf("user-space locked add: %w", err)
		}
		lockAdds++
		if _, err := stats.Atomic(zero, statCounter, 8, maps.AtomicAdd, 1, 0); err != nil {
			return nil, fmt.Errorf("user-space atomic add: %w", err)
		}
		atomicAdds++
		now := time.Now()
		if now.After(nextFlip) {
			if err := flip(); err != nil {
				return nil, err
			}
			nextFlip = now.Add(2 * time.Millisecond)
		}
		if now.After(nextProgress) {
			progress("  %4.1fs  program runs %d  locked adds %d  atomic adds %d  flips %d  events %d\n",
				now.Sub(workStart).Seconds(), statWord(statRuns), lockAdds, atomicAdds, flips, received.Load())
			nextProgress = nextProgress.Add(time.Second)
		}
		time.Sleep(50 * time.Microsecond)
	}
	workTime := time.Since(workStart)

	// The workers' own counts.
	var runs uint64
	for i, w := range ws {
		if waitErrs[i] != nil {
			return nil, fmt.Errorf("worker %d: %v: %s", i, waitErrs[i], strings.TrimSpace(w.err.String()))
		}
		n, err := strconv.ParseUint(strings.TrimSpace(w.out.String()), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("worker %d printed %q: %v", i, w.out.String(), err)
		}
		runs += n
	}

	// Final grace period and drain of both buffers.
	r.Synchronize()
	for _, m := range inner {
		v, err := m.Atomic(zero, 0, 8, maps.AtomicXchg, 0, 0)
		if err != nil {
			return nil, err
		}
		drained += v
	}
	// The events still in the ring.
	produced, dropped := statWord(statProduced), statWord(statDropped)
	deadline := time.Now().Add(2 * time.Second)
	for received.Load() < produced && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stopRead()
	if err := <-readDone; err != nil {
		return nil, fmt.Errorf("ring buffer reader: %w", err)
	}

	lv := make([]byte, 16)
	if err := locked.Lookup(zero, lv, 0); err != nil {
		return nil, fmt.Errorf("read the locked counter: %w", err)
	}
	lockedCount := binary.NativeEndian.Uint64(lv[lockedCountOff:])
	attempts := (runs + demoEventEvery - 1) / demoEventEvery

	rep = &demoReport{
		Region: path, Workers: workers, Seconds: workTime.Seconds(),
		ProgramRuns: runs, RunsPerSecond: float64(runs) / workTime.Seconds(),
		LockedAdds: lockAdds, AtomicAdds: atomicAdds, Flips: flips,
		EventsReceived: received.Load(), EventsDropped: dropped,
	}
	if len(syncs) > 0 {
		slices.Sort(syncs)
		rep.SyncMedianNs, rep.SyncMaxNs = syncs[len(syncs)/2].Nanoseconds(), syncs[len(syncs)-1].Nanoseconds()
	}
	add := func(name, what string, expected, observed uint64) {
		rep.Checks = append(rep.Checks, demoCheck{name, what, expected, observed, expected == observed})
	}
	add("program runs", "runs the workers counted = runs the program numbered (mmapable atomic)", runs, statWord(statRuns))
	add("spin-locked counter", "program runs + user-space WithLock adds = LRU value's counter", runs+lockAdds, lockedCount)
	add("mmapable atomic counter", "program runs + user-space Atomic adds = array counter", runs+atomicAdds, statWord(statCounter))
	add("double buffer", "program runs = sum drained after flips and grace periods", runs, drained+late)
	add("writes after a grace period", "increments that reached a buffer after Synchronize + drain", 0, late)
	add("ring events", "events the program wrote = events the reader received", produced, rep.EventsReceived)
	add("ring outputs", "one output per 64 runs = written + dropped (ring full)", attempts, produced+dropped)
	add("malformed events", "events with a wrong size or run number", 0, badEvents.Load())
	add("lock misses", "runs that found no LRU value", 0, statWord(statMisses))
	rep.AllChecksPassed = true
	for _, c := range rep.Checks {
		rep.AllChecksPassed = rep.AllChecksPassed && c.OK
	}
	rep.WallSeconds = time.Since(wallStart).Seconds()
	return rep, nil
}

func printDemo(rep *demoReport) {
	fmt.Printf("userbpf demo: %d worker processes for %.2fs, region %s\n\n", rep.Workers, rep.Seconds, rep.Region)
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "check\texpected\tobserved\t\tmeaning")
	for _, c := range rep.Checks {
		mark := "ok"
		if !c.OK {
			mark = "WRONG"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", c.Name, c.Expected, c.Observed, mark, c.What)
	}
	tw.Flush()
	fmt.Println()
	fmt.Printf("program runs          %d (%.0f runs/s over %d processes)\n", rep.ProgramRuns, rep.RunsPerSecond, rep.Workers)
	fmt.Printf("user-space operations %d locked adds, %d atomic adds, %d double-buffer flips\n", rep.LockedAdds, rep.AtomicAdds, rep.Flips)
	fmt.Printf("grace period          median %s, max %s (Region.Synchronize, %d flips)\n",
		time.Duration(rep.SyncMedianNs), time.Duration(rep.SyncMaxNs), rep.Flips)
	fmt.Printf("ring events received  %d (%d dropped on a full ring)\n", rep.EventsReceived, rep.EventsDropped)
	if rep.AllChecksPassed {
		fmt.Println("\nall checks passed: every total is exact")
	} else {
		fmt.Println("\nSOME CHECKS FAILED")
	}
}

// demoChildCommand re-executes this binary as a demo worker. The
// environment is inherited, so inside the CLI test harness (the test binary
// doubling as the CLI, USERBPF_CLI_TEST=1) the child runs main too.
func demoChildCommand(region string, dur time.Duration) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.Command(self, "__demo-worker", region, dur.String())
}

// demoWorkerCmd runs the demo program in a loop for a duration and prints
// how many runs it made.
func demoWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "__demo-worker REGION DURATION",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			dur, err := time.ParseDuration(args[1])
			if err != nil {
				return err
			}
			r, err := userbpf.OpenRegion(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.Program(demoProgram)
			if err != nil {
				return err
			}
			ctx := make([]byte, 64)
			var runs uint64
			deadline := time.Now().Add(dur)
			for {
				for range 256 {
					r0, err := p.Run(ctx)
					if err != nil {
						return fmt.Errorf("run %d: %w", runs, err)
					}
					if r0 != 0 {
						return fmt.Errorf("run %d returned %d", runs, r0)
					}
					runs++
				}
				if !time.Now().Before(deadline) {
					break
				}
			}
			fmt.Println(runs)
			return nil
		},
	}
}
