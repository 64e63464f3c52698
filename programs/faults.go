package programs

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/userbpf/userbpf/vm"
)

// Sentinel errors of a run that does not complete.
var (
	// ErrAborted is wrapped by the error of every run that faulted (an
	// *AbortError); errors.Is with a vm sentinel (vm.ErrMemory,
	// vm.ErrBudget, ...) or ErrLeftLock tells the kind.
	ErrAborted = errors.New("program aborted")
	// ErrDisabled: the program reached its abort limit and is disabled
	// until Enable; the run did not start.
	ErrDisabled = errors.New("program disabled after reaching its abort limit (userbpf prog enable, or Program.Enable, re-enables it)")
)

// progStats is bytes 24..47 of a stored program's record (see the layout
// in store.go): counters every process updates with atomics, so the
// counts are exact whoever runs the program.
type progStats struct {
	runs   atomic.Uint64
	faults atomic.Uint64
	limit  atomic.Uint32
	state  atomic.Uint32
}

// FaultState bits.
const (
	stateDisabled  = 1 << 31
	stateKindShift = 24
	stateKindMask  = 0x7f
	statePCMask    = 1<<stateKindShift - 1 // all ones: no instruction
)

// FaultKind says why a run aborted.
type FaultKind uint8

// Fault kinds, as the region records them (values are stored: append only).
const (
	FaultNone          FaultKind = iota
	FaultMemory                  // vm.ErrMemory: a load, store or atomic outside the program's memory
	FaultBudget                  // vm.ErrBudget: the instruction budget ran out
	FaultCallDepth               // vm.ErrCallDepth: too many nested calls
	FaultInvalid                 // vm.ErrInvalid: an invalid instruction or callback
	FaultUnknownHelper           // vm.ErrUnknownHelper: a helper or kfunc the host lacks
	FaultFellOff                 // vm.ErrFellOff: ran past the last instruction
	FaultHelper                  // vm.ErrHelper: a helper's fatal misuse
	FaultPanic                   // vm.ErrPanic: a helper panicked
	FaultLeftLock                // ErrLeftLock: exited holding a bpf_spin_lock
	FaultOther                   // any other error a run stopped with
)

var faultNames = [...]string{"none", "memory", "budget", "call-depth", "invalid", "unknown-helper",
	"fell-off", "helper", "panic", "left-lock", "other"}

// String is the kind's name as `userbpf prog show` prints it.
func (k FaultKind) String() string {
	if int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

// faultKindOf classifies a run's error.
func faultKindOf(err error) FaultKind {
	switch {
	case errors.Is(err, ErrLeftLock):
		return FaultLeftLock
	case errors.Is(err, vm.ErrPanic):
		return FaultPanic
	case errors.Is(err, vm.ErrHelper):
		return FaultHelper
	case errors.Is(err, vm.ErrMemory):
		return FaultMemory
	case errors.Is(err, vm.ErrBudget):
		return FaultBudget
	case errors.Is(err, vm.ErrCallDepth):
		return FaultCallDepth
	case errors.Is(err, vm.ErrUnknownHelper):
		return FaultUnknownHelper
	case errors.Is(err, vm.ErrFellOff):
		return FaultFellOff
	case errors.Is(err, vm.ErrInvalid):
		return FaultInvalid
	}
	return FaultOther
}

// AbortError is the error of a run that faulted. The run stopped at the
// fault; the lock it held was released, the ring-buffer records it had
// reserved were discarded, and its RCU read-side section and virtual CPU
// were left. What it wrote to maps before the fault stays written.
type AbortError struct {
	Program string    // the program Run was called on
	Kind    FaultKind // what went wrong
	// PC is the index of the faulting instruction in the program that
	// faulted (Err names it: a tail call's target, say), or -1 when no
	// single instruction is to blame (ErrLeftLock).
	PC               int
	ReleasedLock     bool  // the run held a bpf_spin_lock, now released
	DiscardedRecords int   // ring-buffer records it had reserved, now discarded
	Err              error // a *vm.Error, or ErrLeftLock
}

// Error implements error.
func (e *AbortError) Error() string {
	s := fmt.Sprintf("run program %q: %v: %v", e.Program, ErrAborted, e.Err)
	if e.ReleasedLock && !errors.Is(e.Err, ErrLeftLock) {
		s += "; its bpf_spin_lock was released"
	}
	if e.DiscardedRecords > 0 {
		if e.DiscardedRecords == 1 {
			s += "; 1 reserved ring-buffer record was discarded"
		} else {
			s += fmt.Sprintf("; %d reserved ring-buffer records were discarded", e.DiscardedRecords)
		}
	}
	return s
}

// Unwrap returns ErrAborted and the fault, for errors.Is and errors.As.
func (e *AbortError) Unwrap() []error { return []error{ErrAborted, e.Err} }

// newAbort describes a run of p that stopped with err, after cleanup.
func newAbort(p *Program, err error, leftLock bool, leftRecords int) *AbortError {
	a := &AbortError{Program: p.name, Kind: faultKindOf(err), PC: -1, ReleasedLock: leftLock, DiscardedRecords: leftRecords, Err: err}
	var ve *vm.Error
	if errors.As(err, &ve) {
		a.PC = ve.PC
	}
	return a
}

// recordAbort counts an abort in the region and disables the program if
// that reaches its abort limit.
func (p *Program) recordAbort(a *AbortError) {
	n := p.stats.faults.Add(1)
	lim := p.stats.limit.Load()
	disable := lim != 0 && n >= uint64(lim)
	pc := uint32(statePCMask)
	if a.PC >= 0 && a.PC < statePCMask {
		pc = uint32(a.PC)
	}
	for {
		old := p.stats.state.Load()
		s := old&stateDisabled | uint32(a.Kind&stateKindMask)<<stateKindShift | pc
		if disable {
			s |= stateDisabled
		}
		if p.stats.state.CompareAndSwap(old, s) {
			return
		}
	}
}

// Stats are a program's counters, shared by every process that runs it.
type Stats struct {
	Runs   uint64 // runs started, by every process (aborted ones included)
	Faults uint64 // runs that aborted, since the program was stored or last enabled
	// LastFault and LastPC describe the latest abort (FaultNone and -1 if
	// none since it was stored or enabled; LastPC is also -1 for a fault
	// without an instruction).
	LastFault  FaultKind
	LastPC     int
	AbortLimit uint32 // aborts after which the program is disabled; 0: never
	Disabled   bool   // runs fail with ErrDisabled until Enable
}

// Stats reads the program's counters from the region.
func (p *Program) Stats() Stats {
	s := p.stats.state.Load()
	st := Stats{
		Runs:       p.stats.runs.Load(),
		Faults:     p.stats.faults.Load(),
		LastFault:  FaultKind(s >> stateKindShift & stateKindMask),
		LastPC:     int(s & statePCMask),
		AbortLimit: p.stats.limit.Load(),
		Disabled:   s&stateDisabled != 0,
	}
	if st.LastPC == statePCMask || st.LastFault == FaultNone {
		st.LastPC = -1
	}
	return st
}

// Runs returns the program's run and abort counts, by every process.
func (p *Program) Runs() (runs, faults uint64) { return p.stats.runs.Load(), p.stats.faults.Load() }

// SetAbortLimit sets the number of aborts (counted since the program was
// stored or last enabled) after which the program is disabled, for every
// process; 0 removes the limit. A program already past the new limit is
// disabled by its next abort.
func (p *Program) SetAbortLimit(n uint32) { p.stats.limit.Store(n) }

// Enable re-enables a disabled program and resets its abort count and last
// fault; the abort limit stays. Runs already under way when it is called
// may still count aborts against the limit.
func (p *Program) Enable() {
	p.stats.faults.Store(0)
	p.stats.state.Store(0)
}

// Disabled reports whether the program is disabled.
func (p *Program) Disabled() bool { return p.stats.state.Load()&stateDisabled != 0 }
