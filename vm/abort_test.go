package vm

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// A helper's error stops the run as ErrHelper, wrapping the helper's own
// error; a helper's panic stops it as ErrPanic, at the call, and the
// Machine runs again afterwards (the panic went no further).
func TestHelperErrorAndPanic(t *testing.T) {
	misuse := errors.New("bpf_thing: misuse")
	m := NewMachine()
	m.Helpers.Set(200, func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { return 0, misuse })
	m.Helpers.Set(201, func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { panic("deliberate") })
	for _, c := range []struct {
		fn   int32
		want []error
		text string
	}{
		{200, []error{ErrHelper, misuse}, "helper fault: bpf_thing: misuse"},
		{201, []error{ErrPanic}, "helper panicked: deliberate"},
	} {
		p := &Program{Name: "p", Insns: toVM(t, asm.Instructions{
			asm.Mov.Imm(asm.R0, 1),
			call(c.fn),
			asm.Return(),
		})}
		_, err := p.Run(m, nil)
		var e *Error
		if !errors.As(err, &e) || e.PC != 1 || e.Program != "p" || !strings.Contains(err.Error(), c.text) {
			t.Fatalf("helper %d: %v", c.fn, err)
		}
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("helper %d: %v is not %v", c.fn, err, w)
			}
		}
		ok := &Program{Name: "ok", Insns: toVM(t, asm.Instructions{asm.Mov.Imm(asm.R0, 7), asm.Return()})}
		if v, err := ok.Run(m, nil); v != 7 || err != nil {
			t.Fatalf("after helper %d: %d, %v", c.fn, v, err)
		}
	}
}

// A panic inside a callback's helper (bpf_loop → callback → helper) is
// caught too, at the inner call.
func TestPanicInCallback(t *testing.T) {
	m := NewMachine()
	m.Helpers.Set(201, func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { panic("deep") })
	p := &Program{Name: "p", Insns: toVM(t, asm.Instructions{
		asm.Mov.Imm(asm.R1, 3),
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: 5},
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Imm(asm.R4, 0),
		call(FnLoop),
		asm.Return(),
		call(201), // the callback, at 7
		asm.Return(),
	})}
	_, err := p.Run(m, nil)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrPanic) || e.PC != 7 {
		t.Fatalf("%v", err)
	}
}
