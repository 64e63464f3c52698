package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/benchprog"
	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/vm"
)

// aluIters is the trip count of the ALU loop.
const aluIters = 20000 // the kernel verifier walks every iteration: 12 × 20000 < its 1 M limit

// VM measures the interpreter: ns per executed instruction of an ALU loop
// (against the kernel's JIT running the same program with BPF_PROG_RUN),
// and a clang-built "lookup + spin lock + increment" program run from this
// process against the kernel's BPF_PROG_RUN of the same object.
func VM(env *Env) ([]Result, error) {
	var res []Result
	add := func(x Result) { x.Suite = "vm"; res = append(res, x) }

	env.say("ALU loop")
	ps := &ebpf.ProgramSpec{Name: "alu", Type: ebpf.SocketFilter, License: "GPL", Instructions: benchprog.ALULoop(aluIters)}
	obj, err := loader.FromCollectionSpec(&ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"alu": ps}}, "bench", nil)
	if err != nil {
		return nil, err
	}
	p := &vm.Program{Name: "alu", Insns: obj.Programs["alu"].Insns}
	m := vm.NewMachine()
	m.Budget = 10 * aluIters * benchprog.ALUInsnsPerIter
	ctx := make([]byte, 64)
	perRun := cpuPerOp(5, func(n int) {
		for range n {
			p.Run(m, ctx)
		}
	})
	insns := float64(aluIters*benchprog.ALUInsnsPerIter + 4)
	x := Result{Name: "alu_loop_ns_per_insn", Unit: "ns/insn", Value: perRun / insns, Target: "<= 3 ns per executed instruction"}
	if kp, err := ebpf.NewProgram(ps); err == nil {
		if d, err := kernelRun(kp, ctx, 100); err == nil {
			x.Kernel = d / insns
			x.Ratio = x.Kernel / x.Value
			x.Note = "kernel: JIT-compiled, BPF_PROG_RUN; both sides CPU time (the kernel's timer stops while its loop is rescheduled; ours is thread CPU time)"
		}
		kp.Close()
	} else {
		x.Note = "kernel program unavailable: " + err.Error()
	}
	add(x)

	env.say("lookup + spin lock + increment")
	objPath := filepath.Join("testdata", "spinlock_hash.o")
	if _, err := os.Stat(objPath); err != nil {
		add(Result{Name: "lock_inc_run", Note: "testdata/spinlock_hash.o not found: run from the repository's root"})
		return res, nil
	}
	path := filepath.Join(env.Dir, fmt.Sprintf("bench-vm-%d", os.Getpid()))
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		return nil, err
	}
	defer userbpf.RemoveRegion(path, true)
	defer r.Close()
	c, err := userbpf.LoadCollection(r, objPath)
	if err != nil {
		return nil, err
	}
	prog := c.Programs["lock_inc"]
	ours := cpuPerOp(5, func(n int) { prog.RunRepeat(ctx, n) })
	y := Result{Name: "lock_inc_run", Unit: "ns/run", Value: ours, Target: "no slower than the kernel's BPF_PROG_RUN",
		Note: "lookup + bpf_spin_lock + increment, spinlock_hash.o; both sides repeat the run in one call (RunRepeat / BPF_PROG_TEST_RUN repeat) and count CPU time: the kernel's timer stops while its loop is rescheduled, ours is thread CPU time"}
	if kc, err := ebpf.LoadCollection(objPath); err == nil {
		if d, err := kernelRun(kc.Programs["lock_inc"], ctx, 100000); err == nil {
			y.Kernel = d
			y.Ratio = d / ours
		}
		kc.Close()
	} else {
		y.Note += "; kernel load failed: " + err.Error()
	}
	add(y)
	single := cpuPerOp(5, func(n int) {
		for range n {
			prog.Run(ctx)
		}
	})
	add(Result{Name: "lock_inc_single_run", Unit: "ns/run", Value: single,
		Note: "one Run call per run: leases a virtual CPU and enters the RCU section each time"})
	allocs := allocsPerOp(func(int) { prog.Run(ctx) })
	add(Result{Name: "allocs_per_run", Unit: "allocs/run", Value: allocs, Target: "0"})
	return append(res, Verifier(env)...), nil
}

// kernelRun runs a kernel program repeat times with BPF_PROG_RUN and
// returns the kernel's own average duration per run in ns.
func kernelRun(p *ebpf.Program, _ []byte, repeat int) (float64, error) {
	data := make([]byte, 64)
	binary.BigEndian.PutUint16(data[12:], 0x0800)
	_, d, err := p.Benchmark(data, repeat, nil)
	if err != nil {
		return 0, err
	}
	return float64(d.Nanoseconds()), nil
}
