package vm

import (
	"errors"
	"fmt"
)

// HelperFunc is a helper (or kfunc): R1-R5 in, R0 out, with the kernel's
// signature and return codes (failures a program should see are negative
// errno values in R0). A non-nil error stops the run instead: for faults
// the kernel's verifier would have prevented, such as a pointer argument
// the program may not access, or for host failures.
type HelperFunc func(m *Machine, r1, r2, r3, r4, r5 uint64) (uint64, error)

// HelperTable maps helper numbers (the kernel's enum bpf_func_id) to
// helpers. A call to a number without a helper stops the run with
// ErrUnknownHelper.
type HelperTable []HelperFunc

// Set installs f as helper id, growing the table as needed.
func (t *HelperTable) Set(id int32, f HelperFunc) {
	if id < 0 {
		panic(fmt.Sprintf("vm: negative helper id %d", id))
	}
	for int(id) >= len(*t) {
		*t = append(*t, nil)
	}
	(*t)[id] = f
}

// Get returns helper id, or nil.
func (t HelperTable) Get(id int32) HelperFunc {
	if id < 0 || int(id) >= len(t) {
		return nil
	}
	return t[id]
}

// Clone returns a copy the caller may extend without affecting t.
func (t HelperTable) Clone() HelperTable { return append(HelperTable(nil), t...) }

// KfuncTable maps kfunc ids (CallKfunc's Imm, as the loader assigned them)
// to functions.
type KfuncTable map[int32]HelperFunc

// CallFunc runs the callback fn (a register a PseudoFunc load filled, as
// a helper like bpf_loop receives it) with arguments r1-r5 in a new stack
// frame, and returns its R0. It is for helpers, during a run; the callback
// counts against the call depth and the run's instruction budget, and an
// error it stops with is returned (the helper should return it).
func (m *Machine) CallFunc(fn uint64, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	if !m.running || m.code == nil {
		return 0, errors.New("vm: CallFunc outside a run")
	}
	pc := fn - FuncRefBase
	if pc >= uint64(len(m.code.insns)-1) || !m.code.callbacks[pc] {
		return 0, m.fault(m.pc, ErrInvalid, fmt.Sprintf("%#x is not a callback reference", fn))
	}
	if m.depth+1 >= MaxCallDepth {
		return 0, m.fault(m.pc, ErrCallDepth, fmt.Sprintf("callback at insn %d at depth %d (max %d frames)", pc, m.depth+1, MaxCallDepth))
	}
	lo, span, callPC, depth := m.lo, m.span, m.pc, m.depth
	m.inCB++
	v, err := m.exec(m.code, int(pc), r1, r2, r3, r4, r5, depth+1)
	m.inCB--
	m.lo, m.span, m.pc, m.depth = lo, span, callPC, depth
	return v, err
}

// IsCallback reports whether v is a callback reference (PseudoFunc).
func IsCallback(v uint64) bool { return v-FuncRefBase < 1<<32 }

func (m *Machine) helperFault(pc int, kind string, id int32, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err // a callback's fault already names its instruction
	}
	return m.fault(pc, fmt.Errorf("%w: %w", ErrHelper, err), fmt.Sprintf("%s %d", kind, id))
}

// panicFault turns a panic inside a helper (or, were there a bug, the
// interpreter) into the run's error, at the instruction of the helper call
// in progress.
func (m *Machine) panicFault(v any) error {
	return m.fault(m.pc, ErrPanic, fmt.Sprintf("%v", v))
}
