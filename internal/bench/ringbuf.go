package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	ciliumrb "github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/ringbuf"
)

// Ring buffer benchmark parameters: 64-byte records through a 1 MiB ring,
// the same size for the kernel's.
const (
	rbSize       = 1 << 20
	rbRecord     = 64
	rbRecords    = 4 << 20 // per throughput round
	rbRounds     = 5
	rbWakeups    = 2000
	rbKernelRuns = 1 << 16 // program runs per kernel round, 64 outputs each
	rbUnroll     = 64
)

// Ringbuf measures RINGBUF throughput with one producer process and one
// consumer process (64-byte records), the kernel's ring buffer fed by a BPF
// program under BPF_PROG_RUN and read by cilium/ebpf's reader in the same
// run, and the wake-up latency of a consumer asleep on the futex against a
// kernel consumer asleep in epoll.
func Ringbuf(env *Env) ([]Result, error) {
	path := filepath.Join(env.Dir, fmt.Sprintf("bench-ringbuf-%d", os.Getpid()))
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		return nil, err
	}
	defer userbpf.RemoveRegion(path, true)
	defer r.Close()
	if _, err := r.CreateMap(maps.Spec{Name: "rb", Type: maps.RingBuf, MaxEntries: rbSize}); err != nil {
		return nil, err
	}
	var res []Result
	add := func(x Result) { x.Suite = "ringbuf"; res = append(res, x) }

	env.say("ring buffer throughput, producer and consumer processes")
	ours, drops, err := ringThroughput(env, path)
	if err != nil {
		return nil, err
	}
	env.say("kernel ring buffer throughput (BPF_PROG_RUN + cilium/ebpf reader)")
	kern, kdrops, kerr := kernelRingThroughput()
	x := Result{Name: "records_per_second_64B", Unit: "M rec/s", Value: ours / 1e6, Target: ">= 10 M/s and >= the kernel",
		Note: fmt.Sprintf("median of %d rounds of %d records; producer found the ring full %d times (it retries)", rbRounds, rbRecords, drops)}
	if kerr != nil {
		x.Note += "; kernel: " + kerr.Error()
	} else {
		x.Kernel = kern / 1e6
		x.Ratio = ours / kern
		x.Note += fmt.Sprintf("; kernel delivered %.0f%% of what the program output (the rest found the ring full)", 100*(1-kdrops))
	}
	add(x)

	env.say("wake-up latency of a sleeping consumer")
	p50, p99, err := ringWakeLatency(env, r, path)
	if err != nil {
		return nil, err
	}
	kp50, kp99, kerr := kernelWakeLatency()
	l50 := Result{Name: "wakeup_latency_p50", Unit: "us", Value: p50 / 1e3, Note: "submit to the consumer process's return from Read, consumer asleep on the futex"}
	l99 := Result{Name: "wakeup_latency_p99", Unit: "us", Value: p99 / 1e3}
	if kerr != nil {
		l50.Note += "; kernel: " + kerr.Error()
	} else {
		l50.Kernel, l50.Ratio = kp50/1e3, kp50/p50
		l99.Kernel, l99.Ratio = kp99/1e3, kp99/p99
		l50.Note += "; kernel: bpf_ringbuf_output to an epoll-sleeping cilium/ebpf reader"
	}
	add(l50)
	add(l99)
	return res, nil
}

// benchChild is a started bench child with pipes.
type benchChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startBenchChild(env *Env, args ...string) (*benchChild, error) {
	cmd := env.Child(args...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &benchChild{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if l := c.line(); l != "ready" {
		c.stop()
		return nil, fmt.Errorf("bench child %v: %q instead of ready", args, l)
	}
	return c, nil
}

func (c *benchChild) line() string {
	if !c.out.Scan() {
		return ""
	}
	return c.out.Text()
}

func (c *benchChild) tell(s string) { fmt.Fprintln(c.in, s) }

func (c *benchChild) stop() {
	c.in.Close()
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

func (c *benchChild) wait() error {
	c.in.Close()
	return c.cmd.Wait()
}

// ringThroughput runs a producer process and a consumer process and
// returns the median records per second over the rounds, and how often the
// producer found the ring full.
func ringThroughput(env *Env, path string) (float64, uint64, error) {
	cons, err := startBenchChild(env, "ringbuf", "consume", path, strconv.Itoa(rbRecords))
	if err != nil {
		return 0, 0, err
	}
	defer cons.stop()
	prod, err := startBenchChild(env, "ringbuf", "produce", path, strconv.Itoa(rbRecords))
	if err != nil {
		return 0, 0, err
	}
	defer prod.stop()
	var rates []float64
	var drops uint64
	for range rbRounds {
		start := time.Now()
		cons.tell("go")
		prod.tell("go")
		if l := cons.line(); l != "done" {
			return 0, 0, fmt.Errorf("ringbuf consumer: %q", l)
		}
		el := time.Since(start)
		d, err := strconv.ParseUint(prod.line(), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("ringbuf producer did not report")
		}
		drops += d
		rates = append(rates, rbRecords/el.Seconds())
	}
	return median(rates), drops, nil
}

// runRingbufChild is the child side: "produce PATH N" outputs N records per
// "go" and prints how often the ring was full; "consume PATH N" reads N
// records per "go" and prints "done"; "sleeper PATH N" reads N timestamped
// records, each while asleep, and prints the latencies.
func runRingbufChild(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("bench child ringbuf: arguments %q", args)
	}
	n, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	r, err := userbpf.OpenRegion(args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := r.OpenMap("rb", 0)
	if err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	switch args[0] {
	case "produce":
		defer pinThread(0)()
		g, err := ringbuf.Open(m)
		if err != nil {
			return err
		}
		defer g.Close()
		rec := make([]byte, rbRecord)
		fmt.Println("ready")
		for in.Scan() {
			full := uint64(0)
			for i := range n {
				binary.LittleEndian.PutUint64(rec, uint64(i))
				for {
					err := g.Output(rec, 0)
					if err == nil {
						break
					}
					if !errors.Is(err, ringbuf.ErrFull) {
						return err
					}
					full++
					runtime.Gosched()
				}
			}
			fmt.Println(full)
		}
		return nil
	case "consume":
		defer pinThread(1)()
		rd, err := ringbuf.NewReader(m)
		if err != nil {
			return err
		}
		defer rd.Close()
		rec := ringbuf.Record{RawSample: make([]byte, 0, rbRecord)}
		fmt.Println("ready")
		ctx := context.Background()
		for in.Scan() {
			for i := range n {
				if err := rd.ReadInto(ctx, &rec); err != nil {
					return err
				}
				if len(rec.RawSample) != rbRecord || binary.LittleEndian.Uint64(rec.RawSample) != uint64(i) {
					return fmt.Errorf("record %d: % x", i, rec.RawSample)
				}
			}
			fmt.Println("done")
		}
		return nil
	case "sleeper":
		rd, err := ringbuf.NewReader(m)
		if err != nil {
			return err
		}
		defer rd.Close()
		fmt.Println("ready")
		var rec ringbuf.Record
		lat := make([]float64, 0, n)
		for range n {
			if err := rd.ReadInto(context.Background(), &rec); err != nil {
				return err
			}
			now := monotonicNow()
			lat = append(lat, float64(now-int64(binary.LittleEndian.Uint64(rec.RawSample))))
		}
		slices.Sort(lat)
		fmt.Println(lat[len(lat)/2], lat[len(lat)*99/100])
		return nil
	}
	return fmt.Errorf("bench child ringbuf: unknown mode %q", args[0])
}

// pinThread locks the calling goroutine to its thread and the thread to
// CPU i (of those this process may use), so that the two sides of a
// throughput run never share a CPU; the returned function undoes it. On a
// single CPU it does nothing.
func pinThread(i int) (unpin func()) {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil || set.Count() < 2 {
		return func() {}
	}
	for c := 0; c < 1024; c++ {
		if !set.IsSet(c) {
			continue
		}
		if i > 0 {
			i--
			continue
		}
		runtime.LockOSThread()
		var one unix.CPUSet
		one.Set(c)
		unix.SchedSetaffinity(0, &one)
		return func() {
			unix.SchedSetaffinity(0, &set)
			runtime.UnlockOSThread()
		}
	}
	return func() {}
}

// monotonicNow is CLOCK_MONOTONIC in nanoseconds: comparable between
// processes, and what bpf_ktime_get_ns returns.
func monotonicNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// ringWakeLatency times submits to a consumer process that sleeps on the
// futex each time: the producer (this process) waits until the consumer has
// announced it sleeps and a little longer, so that it is really in the
// kernel, then submits a record carrying the time.
func ringWakeLatency(env *Env, r *userbpf.Region, path string) (p50, p99 float64, err error) {
	m, err := r.OpenMap("rb", 0)
	if err != nil {
		return 0, 0, err
	}
	g, err := ringbuf.Open(m)
	if err != nil {
		return 0, 0, err
	}
	defer g.Close()
	c, err := startBenchChild(env, "ringbuf", "sleeper", path, strconv.Itoa(rbWakeups))
	if err != nil {
		return 0, 0, err
	}
	defer c.stop()
	rec := make([]byte, 8)
	for range rbWakeups {
		deadline := time.Now().Add(10 * time.Second)
		for g.Stats().Sleepers == 0 {
			if time.Now().After(deadline) {
				return 0, 0, fmt.Errorf("the consumer never went to sleep")
			}
			runtime.Gosched()
		}
		time.Sleep(200 * time.Microsecond) // let it reach futex_wait
		binary.LittleEndian.PutUint64(rec, uint64(monotonicNow()))
		if err := g.Output(rec, 0); err != nil {
			return 0, 0, err
		}
	}
	f := strings.Fields(c.line())
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("sleeper did not report")
	}
	p50, _ = strconv.ParseFloat(f[0], 64)
	p99, _ = strconv.ParseFloat(f[1], 64)
	return p50, p99, c.wait()
}

// outputProgram builds a socket filter that calls bpf_ringbuf_output on the
// ring n times: with 64 bytes from its stack, or (stamp) with 8 bytes
// holding bpf_ktime_get_ns.
func outputProgram(ring *ebpf.Map, n int, stamp bool) (*ebpf.Program, error) {
	var insns asm.Instructions
	size := int64(rbRecord)
	if stamp {
		insns = append(insns, asm.FnKtimeGetNs.Call(), asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord))
		size = 8
	} else {
		for i := int16(0); i < rbRecord/4; i++ {
			insns = append(insns, asm.StoreImm(asm.RFP, -rbRecord+4*i, int64(i), asm.Word))
		}
	}
	for range n {
		insns = append(insns,
			asm.LoadMapPtr(asm.R1, ring.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, int32(-size)),
			asm.Mov.Imm(asm.R3, int32(size)),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnRingbufOutput.Call(),
		)
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
	return ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "GPL", Instructions: insns})
}

// kernelRingThroughput has a BPF program output 64-byte records into a
// kernel RINGBUF (BPF_PROG_RUN with repeat, on CPU 0) while cilium/ebpf's
// reader consumes them in another goroutine (its thread on CPU 1), and
// returns the median records delivered per second and the share the
// program dropped on a full ring.
func kernelRingThroughput() (float64, float64, error) {
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: rbSize})
	if err != nil {
		return 0, 0, err
	}
	defer ring.Close()
	prog, err := outputProgram(ring, rbUnroll, false)
	if err != nil {
		return 0, 0, err
	}
	defer prog.Close()
	rd, err := ciliumrb.NewReader(ring)
	if err != nil {
		return 0, 0, err
	}
	defer rd.Close()
	defer pinThread(0)()
	var rates []float64
	var dropped float64
	for range rbRounds {
		got := make(chan int)
		go func() {
			defer pinThread(1)()
			n := 0
			rec := ciliumrb.Record{RawSample: make([]byte, 0, rbRecord)}
			// Until Flush: then the records still in the ring, then ErrFlushed.
			for rd.ReadInto(&rec) == nil {
				n++
			}
			got <- n
		}()
		start := time.Now()
		ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: rbKernelRuns})
		rd.Flush()
		n := <-got
		el := time.Since(start)
		if err != nil || ret != 0 {
			return 0, 0, fmt.Errorf("BPF_PROG_RUN: %v (ret %d)", err, ret)
		}
		rates = append(rates, float64(n)/el.Seconds())
		dropped += 1 - float64(n)/float64(rbKernelRuns*rbUnroll)
	}
	return median(rates), dropped / rbRounds, nil
}

// kernelWakeLatency times bpf_ringbuf_output (with the program's
// bpf_ktime_get_ns in the record) to a cilium/ebpf reader asleep in
// epoll_wait.
func kernelWakeLatency() (p50, p99 float64, err error) {
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: rbSize})
	if err != nil {
		return 0, 0, err
	}
	defer ring.Close()
	prog, err := outputProgram(ring, 1, true)
	if err != nil {
		return 0, 0, err
	}
	defer prog.Close()
	rd, err := ciliumrb.NewReader(ring)
	if err != nil {
		return 0, 0, err
	}
	defer rd.Close()
	lats := make(chan []float64)
	errc := make(chan error, 1)
	go func() {
		var lat []float64
		var rec ciliumrb.Record
		for range rbWakeups {
			if err := rd.ReadInto(&rec); err != nil {
				errc <- err
				return
			}
			lat = append(lat, float64(monotonicNow()-int64(binary.LittleEndian.Uint64(rec.RawSample))))
		}
		lats <- lat
	}()
	for range rbWakeups {
		time.Sleep(500 * time.Microsecond) // the reader is back in epoll_wait
		if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
			return 0, 0, err
		}
	}
	select {
	case err := <-errc:
		return 0, 0, err
	case lat := <-lats:
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)*99/100], nil
	}
}
