package programs

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
	"github.com/userbpf/userbpf/vm"
)

// Program is a stored program opened by this process. Run is safe from
// many goroutines at once, and other processes run the same program
// through their own handles.
type Program struct {
	name   string
	typ    uint32
	id     uint32
	region *shm.Region
	rcu    *rcu.Domain
	vm     *vm.Program
	maps   []*maps.Map
	graph  *progGraph // nil if the program uses no graph types or containers

	runners sync.Pool // *runner
	rings   ringCache

	// stats are the counters in the program's region record, shared by
	// every process.
	stats *progStats
}

// runner is one goroutine's machine, host state and RCU reader, reused
// across runs (a reader of its own spares the domain's reader pool).
type runner struct {
	m  *vm.Machine
	h  run
	rd *rcu.Reader
}

// testHelpers, set only by this package's tests (export_test.go), amends
// the helper table of programs opened afterwards.
var testHelpers func(*vm.HelperTable)

// ErrLeftLock is wrapped by the error of a run that ended holding a
// bpf_spin_lock (the lock is released).
var ErrLeftLock = errors.New("program ended holding a bpf_spin_lock (released)")

// Open opens the program called name in the region: its instructions are
// read back and its maps opened by name.
func Open(r *shm.Region, d *rcu.Domain, name string) (*Program, error) {
	s, err := readStored(r, name)
	if err != nil {
		return nil, err
	}
	p := &Program{name: name, typ: s.typ, id: s.id, region: r, rcu: d,
		stats: (*progStats)(r.Pointer(s.off + progStatsOff)),
		vm:    &vm.Program{Name: name, Insns: s.insns, Maps: make([]vm.MapRef, len(s.maps))}}
	for i, sm := range s.maps {
		mp, err := maps.Open(r, d, sm.Name, 0)
		if err != nil {
			return nil, fmt.Errorf("open program %q: map %d: %w", name, i, err)
		}
		p.maps = append(p.maps, mp)
		ref := vm.MapRef{Handle: mp}
		if first, stride, n, size, ro, ok := mp.ProgArrayLayout(); ok {
			ref.Array = &vm.ArrayLayout{First: uintptr(first), Stride: stride, Len: n, ValueSize: size, ReadOnly: ro}
		}
		if sm.GlobalData {
			v, err := mp.ValuePointer(0)
			if err != nil {
				return nil, fmt.Errorf("open program %q: global data map %q: %w", name, sm.Name, err)
			}
			ref.ValueAddr, ref.ValueSize, ref.ReadOnly = uintptr(v), mp.ValueSize(), sm.ReadOnly
		}
		p.vm.Maps[i] = ref
	}
	if g, err := newProgGraph(p, s.types); err != nil {
		return nil, fmt.Errorf("open program %q: %w", name, err)
	} else if g.types != 0 || len(g.maps) > 0 {
		p.graph = g
	}
	if err := vm.Validate(p.vm); err != nil {
		return nil, fmt.Errorf("open program %q: %w", name, err)
	}
	p.vm.Prepare()
	helpers, kfuncs := Helpers(), Kfuncs()
	if testHelpers != nil {
		testHelpers(&helpers)
	}
	p.runners.New = func() any {
		m := vm.NewMachine()
		m.Helpers, m.Kfuncs = helpers, kfuncs
		rn := &runner{m: m}
		rn.h.m = m
		m.LockTag = r.Holder().Tag // the VM takes free locks itself, as this process
		rn.h.region, rn.h.holder, rn.h.rings, rn.h.rcu = r, r.Holder(), &p.rings, d
		m.Trace = traceTo(r, d)
		m.Host = &rn.h
		rn.h.readerSlot = -1
		rn.h.graph = p.graph
		if rd, err := d.NewReader(); err == nil {
			rn.rd = rd
			rn.h.readerSlot = rd.Slot()
			// A runner the pool drops gives its reader slot back.
			runtime.AddCleanup(rn, func(rd *rcu.Reader) { rd.Close() }, rd)
		}
		return rn
	}
	return p, nil
}

// Name is the program's name in its region.
func (p *Program) Name() string { return p.name }

// ID is the program's ID in its region (what PROG_ARRAY slots hold).
func (p *Program) ID() uint32 { return p.id }

// Type is the program type its section named (enum bpf_prog_type).
func (p *Program) Type() uint32 { return p.typ }

// VM is the program's instructions and map references.
func (p *Program) VM() *vm.Program { return p.vm }

// Run runs the program once with ctx as its context (the program may read
// and write it) and returns R0. The run leases a virtual CPU (waiting if
// all are busy) and stays inside an RCU read-side section. A run that
// faults is aborted: the lock it held is released, the records it
// reserved are discarded, the section and the CPU are left, the fault is
// counted in the region, and the error is an *AbortError naming the
// program, the instruction and the kind of fault. A disabled program
// (see SetAbortLimit) does not run: the error wraps ErrDisabled.
// Steady-state runs allocate nothing.
func (p *Program) Run(ctx []byte) (uint64, error) { return p.RunRepeat(ctx, 1) }

// repeatSection is how many runs of RunRepeat share one read-side
// section: long enough to amortize entering it, short enough that a
// repeat loop never holds a grace period back for long.
const repeatSection = 256

// RunRepeat runs the program n times with the same context and returns
// the last R0, as BPF_PROG_TEST_RUN with repeat does: the virtual CPU is
// leased once for the loop and the read-side section is re-entered every
// repeatSection runs. It stops at the first run that aborts.
func (p *Program) RunRepeat(ctx []byte, n int) (uint64, error) {
	if p.Disabled() {
		return 0, fmt.Errorf("run program %q: %w", p.name, ErrDisabled)
	}
	n = max(n, 1)
	rn := p.runners.Get().(*runner)
	defer p.runners.Put(rn)
	cpu, err := p.region.LeaseCPU()
	if err != nil {
		return 0, fmt.Errorf("run program %q: %w", p.name, err)
	}
	defer cpu.Release()
	rn.m.CPU, rn.h.cpu = uint32(cpu.ID()), cpu.ID()
	var (
		r0    uint64
		abort *AbortError
		done  int
	)
	for done < n && abort == nil {
		if rn.rd != nil {
			r0, abort = p.section(rn, ctx, &done, n)
			continue
		}
		var err error
		if r0, abort, err = p.sharedSection(rn, ctx, &done, n); err != nil {
			p.stats.runs.Add(uint64(done))
			return 0, fmt.Errorf("run program %q: %w", p.name, err)
		}
	}
	p.stats.runs.Add(uint64(done))
	if abort != nil {
		p.recordAbort(abort)
		return r0, abort
	}
	return r0, nil
}

// section runs a batch inside the runner's own read-side section, left
// whatever happens.
func (p *Program) section(rn *runner, ctx []byte, done *int, n int) (uint64, *AbortError) {
	rn.rd.Lock()
	defer rn.rd.Unlock()
	return p.batch(rn, ctx, done, n)
}

// sharedSection runs a batch inside a read-side section of the domain's
// own, when every reader slot is taken. (Apart from section, so that the
// closure's captures do not make every run allocate.)
func (p *Program) sharedSection(rn *runner, ctx []byte, done *int, n int) (r0 uint64, abort *AbortError, err error) {
	d := *done
	err = p.rcu.Read(func() { r0, abort = p.batch(rn, ctx, &d, n) })
	*done = d
	return r0, abort, err
}

// batch runs the program up to repeatSection times, counting runs in
// *done, and cleans up after each: a run that stops early (a fault) or
// ends holding a lock is aborted.
func (p *Program) batch(rn *runner, ctx []byte, done *int, n int) (uint64, *AbortError) {
	var (
		r0    uint64
		abort *AbortError
	)
	*done += p.vm.RunEach(rn.m, ctx, min(n-*done, repeatSection), func(v uint64, err error) bool {
		r0 = v
		leftLock, leftRecords := rn.h.cleanup()
		if err == nil && leftLock {
			err = ErrLeftLock
		}
		if err != nil {
			abort = newAbort(p, err, leftLock, leftRecords)
			return false
		}
		return true
	})
	return r0, abort
}
