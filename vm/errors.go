package vm

import (
	"errors"
	"fmt"
)

// Sentinel errors a run can stop with; an *Error wraps one of them (or a
// helper's own error) and names the instruction.
var (
	// ErrInvalid: the program reached an instruction that is not valid
	// (unknown opcode, bad register, jump out of the program, ...).
	ErrInvalid = errors.New("invalid instruction")
	// ErrMemory: a load, store or atomic outside the memory the program
	// may touch, a write to read-only memory, or a misaligned atomic.
	ErrMemory = errors.New("memory access violation")
	// ErrBudget: the run executed its whole instruction budget.
	ErrBudget = errors.New("instruction budget exhausted")
	// ErrCallDepth: a bpf-to-bpf call or callback beyond MaxCallDepth frames.
	ErrCallDepth = errors.New("call depth limit exceeded")
	// ErrUnknownHelper: a call to a helper or kfunc the Machine's tables lack.
	ErrUnknownHelper = errors.New("unknown helper")
	// ErrFellOff: execution ran past the last instruction.
	ErrFellOff = errors.New("execution fell off the end of the program")
	// ErrHelper: a helper or kfunc stopped the run with an error of its
	// own (misuse the kernel's verifier would have refused, such as taking
	// a second bpf_spin_lock, or a host failure). The *Error wraps both
	// ErrHelper and the helper's error.
	ErrHelper = errors.New("helper fault")
	// ErrPanic: a helper or kfunc panicked. The run recovers, stops, and
	// reports the panic value; the host process carries on.
	ErrPanic = errors.New("helper panicked")
	// ErrBusy: Run was called on a Machine that is already running (from a
	// helper, say); use one Machine per goroutine and CallFunc for callbacks.
	ErrBusy = errors.New("machine already running")
)

// Error is a run that stopped: the instruction index, the kind of failure
// (one of the sentinels above; ErrHelper also wraps the error the helper
// returned) and what exactly went wrong. errors.Is(err, ErrMemory) and
// the like tell the kind.
type Error struct {
	Program string // Program.Name
	PC      int    // index of the instruction in Program.Insns
	Insn    Insn   // the instruction (zero if PC is past the end)
	Err     error
	Detail  string
}

// Error implements error.
func (e *Error) Error() string {
	name := e.Program
	if name != "" {
		name += ": "
	}
	at := fmt.Sprintf("insn %d", e.PC)
	if e.Insn != (Insn{}) {
		at += " (" + e.Insn.String() + ")"
	}
	if e.Detail == "" {
		return fmt.Sprintf("vm: %s%s: %v", name, at, e.Err)
	}
	return fmt.Sprintf("vm: %s%s: %v: %s", name, at, e.Err, e.Detail)
}

// Unwrap returns the sentinel or helper error.
func (e *Error) Unwrap() error { return e.Err }

func (m *Machine) fault(pc int, err error, detail string) error {
	e := &Error{PC: pc, Err: err, Detail: detail}
	if m.code != nil && m.code.prog != nil {
		e.Program = m.code.prog.Name
		if pc >= 0 && pc < len(m.code.prog.Insns) {
			e.Insn = m.code.prog.Insns[pc]
		}
	}
	return e
}

func (m *Machine) memFault(pc int, addr, size uint64, write bool) error {
	what := "load"
	if write {
		what = "store"
	}
	return m.fault(pc, ErrMemory, fmt.Sprintf("%s of %d bytes at %#x is outside the program's memory%s",
		what, size, addr, m.describeNear(addr, write)))
}

func (m *Machine) alignFault(pc int, addr, size uint64) error {
	return m.fault(pc, ErrMemory, fmt.Sprintf("atomic access of %d bytes at misaligned address %#x", size, addr))
}

// describeNear explains a failed access relative to the ranges the program
// could touch, so errors say "read-only" or "past the end of ctx".
func (m *Machine) describeNear(addr uint64, write bool) string {
	if write && m.inRange(addr, 1, false) {
		return " (read-only)"
	}
	if m.ctxN != 0 && addr >= m.ctxLo && addr < m.ctxLo+m.ctxN+4096 {
		return fmt.Sprintf(" (ctx is %d bytes at %#x)", m.ctxN, m.ctxLo)
	}
	if addr >= m.lo-4096 && addr < m.top+4096 {
		return fmt.Sprintf(" (stack frames span %#x..%#x)", m.lo, m.top)
	}
	return ""
}
