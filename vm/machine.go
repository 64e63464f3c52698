package vm

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Limits of a run.
const (
	// StackSize is the size of one stack frame (the kernel's MAX_BPF_STACK).
	StackSize = 512
	// MaxCallDepth is the number of frames a run may have at once: the
	// program's own and bpf-to-bpf calls or callbacks (the kernel's
	// MAX_CALL_FRAMES).
	MaxCallDepth = 8
	// DefaultBudget is the instruction budget of a run when Machine.Budget
	// is zero.
	DefaultBudget = 1_000_000
	// MaxTailCalls is the kernel's MAX_TAIL_CALL_CNT.
	MaxTailCalls = 33
	// MayGotoLimit is how many times may_goto falls through in one run
	// before it jumps (the kernel's BPF_MAX_LOOPS).
	MayGotoLimit = 8 << 20
)

// Machine is the state of one run: registers live on the interpreter's Go
// stack; the eBPF stack frames, call frames and memory ranges live here
// and are reused, so a steady-state Run allocates nothing. A Machine is
// for one goroutine at a time; give each goroutine its own.
//
// The exported fields are the host's to set between runs.
type Machine struct {
	// CPU is what bpf_get_smp_processor_id returns.
	CPU uint32
	// Budget is the number of instructions a run may execute (callbacks
	// included); 0 means DefaultBudget.
	Budget uint64
	// Helpers are the helper functions, by number (DefaultHelpers()
	// unless the host sets another table).
	Helpers HelperTable
	// Kfuncs are the kfuncs, by id.
	Kfuncs KfuncTable
	// Trace receives bpf_trace_printk output, one formatted message per
	// call (without a trailing newline). Nil discards it.
	Trace func(m *Machine, msg []byte)
	// TGID and PID are what bpf_get_current_pid_tgid reports (process id
	// and thread id); NewMachine sets the calling process's.
	TGID, PID uint32
	// UID and GID are what bpf_get_current_uid_gid reports.
	UID, GID uint32
	// Comm is what bpf_get_current_comm copies (NUL-padded).
	Comm [16]byte
	// Host is for the host's helpers: the region, the virtual CPU lease,
	// whatever they need during a run.
	Host any
	// LockTag, when non-zero, lets the VM take and release bpf_spin_lock
	// words itself when they are free and have no waiters, writing LockTag
	// as the owner (see locks.go); everything else goes to the host's
	// FnSpinLock / FnSpinUnlock helpers. Both keep the held lock in the
	// Machine (HeldLock, SetHeldLock); the host releases one a run left.
	LockTag uint32
	// SlowUnlock sends every bpf_spin_unlock to the helper (the host has
	// work to do at unlock time).
	SlowUnlock bool

	held   uint64 // address of the bpf_spin_lock the program holds, 0 if none
	stack  []byte // MaxCallDepth frames; the heap never moves it
	top    uint64 // address just past the stack
	lo     uint64 // lowest stack address the current frames may touch
	span   uint64 // top - lo
	frames [MaxCallDepth]frame

	code    *code
	ctx     []byte
	ctxLo   uint64
	ctxN    uint64
	ranges  []memRange
	dynMaps []any
	hot     memRange // the range the last slow-path access hit, or AllowRange added; checked by fast

	running  bool
	budget   uint64 // instructions left
	mayGoto  uint64
	pc       int // instruction of the helper being called
	depth    int // frame of the helper being called
	tail     *Program
	tailCnt  int
	inCB     int // callbacks (CallFunc) in progress
	rand     uint64
	tidFresh bool
}

// frame is a bpf-to-bpf call in progress.
type frame struct {
	code  *code     // program to return to (a tail call may replace the callee's)
	ret   int       // instruction to return to
	saved [4]uint64 // caller's R6-R9
	fp    uint64    // caller's R10
}

var machineSeed atomic.Uint64

// NewMachine returns a Machine with the default helpers, the calling
// process's ids and comm, and a freshly seeded random generator.
func NewMachine() *Machine {
	m := &Machine{
		Helpers: DefaultHelpers(),
		stack:   make([]byte, MaxCallDepth*StackSize),
		ranges:  make([]memRange, 0, 16),
		dynMaps: make([]any, 0, 4),
		TGID:    uint32(os.Getpid()),
		PID:     uint32(unix.Gettid()),
		UID:     uint32(os.Getuid()),
		GID:     uint32(os.Getgid()),
	}
	m.top = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m.stack)))) + uint64(len(m.stack))
	if b, err := os.ReadFile("/proc/self/comm"); err == nil {
		n := copy(m.Comm[:15], b)
		for n > 0 && (m.Comm[n-1] == '\n' || m.Comm[n-1] == 0) {
			n--
			m.Comm[n] = 0
		}
	}
	m.rand = machineSeed.Add(0x9e3779b97f4a7c15) ^ uint64(nanotime())
	if m.rand == 0 {
		m.rand = 1
	}
	return m
}

// Run executes p with ctx as its context: R1 holds the address of ctx[0]
// (0 if ctx is empty), and the program may read and write ctx. It returns
// R0 at the program's exit, or an *Error naming the instruction where the
// run stopped. Many goroutines may run the same Program at once, each
// with its own Machine. A helper that panics stops the run with ErrPanic;
// the panic does not go further.
func (p *Program) Run(m *Machine, ctx []byte) (r0 uint64, err error) {
	c := p.prepared()
	if m.running {
		return 0, &Error{Program: p.Name, Err: ErrBusy}
	}
	m.begin(c, ctx)
	defer func() {
		if v := recover(); v != nil {
			r0, err = 0, m.panicFault(v)
		}
		m.end()
	}()
	return m.exec(c, 0, m.ctxLo, 0, 0, 0, 0, 0)
}

// RunEach runs p up to n times on m with the same ctx, as n calls of Run
// would, calling after with each run's R0 and error; it stops after n runs
// or when after returns false, and returns how many runs it made. The
// program is prepared and the panic guard set up once for the loop (what
// BPF_PROG_TEST_RUN's repeat amortizes). A helper panic ends that run with
// ErrPanic, given to after, and ends the loop.
func (p *Program) RunEach(m *Machine, ctx []byte, n int, after func(r0 uint64, err error) bool) (runs int) {
	c := p.prepared()
	if m.running {
		after(0, &Error{Program: p.Name, Err: ErrBusy})
		return 0
	}
	inAfter := false
	defer func() {
		if v := recover(); v != nil {
			if inAfter {
				panic(v) // the caller's own panic, not the program's
			}
			err := m.panicFault(v)
			m.end()
			runs++
			after(0, err)
		}
	}()
	for runs < n {
		m.begin(c, ctx)
		r0, err := m.exec(c, 0, m.ctxLo, 0, 0, 0, 0, 0)
		m.end()
		runs++
		inAfter = true
		goOn := after(r0, err)
		inAfter = false
		if !goOn {
			break
		}
	}
	return runs
}

func (m *Machine) begin(c *code, ctx []byte) {
	m.running = true
	m.code = c
	m.ctx = ctx
	m.ctxLo, m.ctxN = 0, uint64(len(ctx))
	if len(ctx) > 0 {
		m.ctxLo = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(ctx))))
	}
	m.ranges = m.ranges[:0]
	m.dynMaps = m.dynMaps[:0]
	m.hot = memRange{}
	m.budget = m.Budget
	if m.budget == 0 {
		m.budget = DefaultBudget
	}
	m.mayGoto = MayGotoLimit
	m.tail = nil
	m.tailCnt = 0
	m.inCB = 0
	m.held = 0
}

func (m *Machine) end() {
	m.running = false
	m.ctx = nil
	m.code = nil
	clear(m.dynMaps)
	m.dynMaps = m.dynMaps[:0]
}

// Program returns the program being run (for helpers), or nil.
func (m *Machine) Program() *Program {
	if m.code == nil {
		return nil
	}
	return m.code.prog
}

// Ctx returns the context of the current run (for helpers).
func (m *Machine) Ctx() []byte { return m.ctx }

// PC returns the index of the instruction calling the current helper.
func (m *Machine) PC() int { return m.pc }

// Remaining returns the instructions left in the current run's budget.
func (m *Machine) Remaining() uint64 { return m.budget }

// Map decodes a map reference a program passed to a helper (a register
// loaded by a PseudoMapFD instruction, or returned by NewMapRef) back to
// the host's map handle.
func (m *Machine) Map(ref uint64) (handle any, ok bool) {
	if m.code != nil {
		if i := ref - MapRefBase; i < uint64(len(m.code.prog.Maps)) {
			return m.code.prog.Maps[i].Handle, true
		}
	}
	if i := ref - DynMapRefBase; i < uint64(len(m.dynMaps)) {
		return m.dynMaps[i], true
	}
	return nil, false
}

// MapRef returns the Program.Maps entry a PseudoMapFD reference names.
func (m *Machine) MapRef(ref uint64) (*MapRef, bool) {
	if m.code != nil {
		if i := ref - MapRefBase; i < uint64(len(m.code.prog.Maps)) {
			return &m.code.prog.Maps[i], true
		}
	}
	return nil, false
}

// NewMapRef registers a map the program did not reference statically
// (an inner map a map-in-map lookup returns) for the rest of the run and
// returns the value to hand the program; Map decodes it.
func (m *Machine) NewMapRef(handle any) uint64 {
	for i, h := range m.dynMaps {
		if h == handle {
			return DynMapRefBase + uint64(i)
		}
	}
	m.dynMaps = append(m.dynMaps, handle)
	return DynMapRefBase + uint64(len(m.dynMaps)-1)
}

// TailCall makes the program continue, once the current helper returns,
// as p from its first instruction with R1 = ctx in the same stack frame,
// as bpf_tail_call does. From a subprogram, p replaces the subprogram: its
// R0 at exit returns to the subprogram's caller, as in the kernel (v5.10+).
// It reports false (and does nothing) when the run already made
// MaxTailCalls tail calls or the call comes from a callback (bpf_loop and
// the like, which the kernel's verifier refuses), in which case the helper
// should return an error code and the program continues.
func (m *Machine) TailCall(p *Program) bool {
	if m.tailCnt >= MaxTailCalls || m.inCB != 0 || p == nil {
		return false
	}
	m.tailCnt++
	m.tail = p
	return true
}

// nextRand is a xorshift64* generator for bpf_get_prandom_u32.
func (m *Machine) nextRand() uint32 {
	x := m.rand
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	m.rand = x
	return uint32((x * 0x2545f4914f6cdd1d) >> 32)
}
