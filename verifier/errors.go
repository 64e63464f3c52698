package verifier

import (
	"errors"
	"fmt"
)

// Sentinel errors: every *Error wraps one, so errors.Is tells the class of
// a rejection.
var (
	// ErrInvalidInsn is returned when an instruction is malformed (unknown
	// opcode, reserved field, register number, a write to R10).
	ErrInvalidInsn = errors.New("invalid instruction")
	// ErrBadJump is returned when a jump leaves the program, lands in the
	// middle of a 64-bit immediate load, or execution falls off the end.
	ErrBadJump = errors.New("bad jump")
	// ErrUnreachable is returned when an instruction no path reaches.
	ErrUnreachable = errors.New("unreachable instruction")
	// ErrBadCall is returned for a call to something that is not a
	// subprogram, or a recursive call.
	ErrBadCall = errors.New("bad call")
	// ErrCallDepth is returned when calls nest deeper than vm.MaxCallDepth
	// frames.
	ErrCallDepth = errors.New("call stack too deep")
	// ErrUninitReg is returned when a register is read before it is
	// written.
	ErrUninitReg = errors.New("uninitialised register")
	// ErrUninitStack is returned when stack bytes are read (or passed to a
	// helper that reads them) before they are written.
	ErrUninitStack = errors.New("uninitialised stack")
	// ErrArg is returned when a helper or kfunc argument has the wrong
	// kind or size.
	ErrArg = errors.New("bad helper argument")
	// ErrNullCheck is returned when a pointer that may be NULL (a lookup
	// result) is used before it is checked.
	ErrNullCheck = errors.New("possibly NULL pointer")
	// ErrMemAccess is returned for a load or store through something that
	// is not a pointer, out of the bounds of what it points to, or into
	// read-only memory.
	ErrMemAccess = errors.New("invalid memory access")
	// ErrLock is returned for misuse of bpf_spin_lock/unlock: a second
	// lock, an unlock of a lock not held, a lock not at the lock field.
	ErrLock = errors.New("bpf_spin_lock misuse")
	// ErrLockHeld is returned for something not allowed while a lock is
	// held (a helper call, exit), including a path that does not unlock.
	ErrLockHeld = errors.New("not allowed while a bpf_spin_lock is held")
	// ErrSpecialField is returned for a direct load or store of a lock
	// word or a graph field (bpf_list_head, bpf_rb_node…).
	ErrSpecialField = errors.New("direct access to a special field")
	// ErrGraphLock is returned for a graph kfunc called without the lock
	// that guards its root.
	ErrGraphLock = errors.New("graph root used without its lock")
	// ErrRefLeak is returned when an acquired reference (a bpf_obj_new
	// object, a popped node, a ring-buffer record) is not released on
	// some path.
	ErrRefLeak = errors.New("unreleased reference")
	// ErrRefInvalid is returned for a use of a reference that was
	// released or invalidated (double free, a non-owning reference after
	// bpf_spin_unlock).
	ErrRefInvalid = errors.New("invalid reference")
	// ErrTooComplex is returned when the analysis exceeds its limits.
	ErrTooComplex = errors.New("program too complex")
)

// Error is a verification failure at one instruction.
type Error struct {
	// Program is the program's name.
	Program string
	// Insn is the instruction index.
	Insn int
	// Line is its source line, if the object has line info.
	Line Line
	// Err is the sentinel of the failure's class.
	Err error
	// Msg says what was found and what was expected.
	Msg string
}

// Error reads like `insn 17 (prog.c:42 "v->cnt++"): R1 is
// map_value_or_null, expected map_value: check the lookup result for NULL
// first`.
func (e *Error) Error() string {
	return fmt.Sprintf("insn %d%s: %s", e.Insn, e.Line.where(), e.Msg)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func (l Line) where() string {
	if l.Num == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s:%d %q)", l.File, l.Num, l.Text)
}
