package vm

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/userbpf/userbpf/internal/isa"
)

func TestBudget(t *testing.T) {
	loop := prog(t, asm.Mov.Imm(asm.R0, 0), asm.Add.Imm(asm.R0, 1).WithSymbol("l"), asm.Ja.Label("l"))
	m := NewMachine()
	m.Budget = 1001
	_, err := loop.Run(m, nil)
	wantErr(t, err, ErrBudget, 1, "") // 1 + 500*(add, ja): the 1002nd would be the add

	// Exactly the budget a program needs is enough; one less is not.
	straight := prog(t, asm.Mov.Imm(asm.R0, 1), asm.Add.Imm(asm.R0, 1), asm.Add.Imm(asm.R0, 1), asm.Return())
	m.Budget = 4
	if v, err := straight.Run(m, nil); err != nil || v != 3 {
		t.Fatalf("budget 4: %d, %v", v, err)
	}
	if m.Remaining() != 0 {
		t.Errorf("remaining %d, want 0", m.Remaining())
	}
	m.Budget = 3
	_, err = straight.Run(m, nil)
	wantErr(t, err, ErrBudget, 3, "")

	// The default budget stops an endless loop too.
	m.Budget = 0
	if _, err := loop.Run(m, nil); !errors.Is(err, ErrBudget) {
		t.Fatalf("default budget: %v", err)
	}
}

func TestRecursionDepth(t *testing.T) {
	// f calls itself forever: the 8th frame's call fails.
	p := prog(t,
		asm.Call.Label("f"),
		asm.Return(),
		asm.StoreImm(asm.RFP, -8, 1, asm.Word).WithSymbol("f"),
		asm.Call.Label("f"),
		asm.Return())
	_, err := run(t, p, nil)
	wantErr(t, err, ErrCallDepth, 3, "max 8 frames")

	// Exactly 8 frames work (see TestKernelCallDepth for the kernel's
	// view); each frame has its own 512 bytes.
	insns := []asm.Instruction{asm.Mov.Imm(asm.R0, 0), asm.Call.Label("f1"), asm.Return()}
	for i := 1; i <= 7; i++ {
		f := []asm.Instruction{
			asm.Mov.Reg(asm.R1, asm.RFP).WithSymbol("f" + string(rune('0'+i))),
			asm.StoreImm(asm.RFP, -512, int64(i), asm.Word),
		}
		if i < 7 {
			f = append(f, asm.Call.Label("f"+string(rune('0'+i+1))))
		}
		f = append(f, asm.LoadMem(asm.R2, asm.RFP, -512, asm.Word), asm.Add.Reg(asm.R0, asm.R2), asm.Return())
		insns = append(insns, f...)
	}
	if v := mustRun(t, prog(t, insns...), nil); v != 28 {
		t.Fatalf("got %d, want 28", v)
	}
}

// A callee's frame is gone once it returns: a pointer into it is dead.
func TestDeadFramePointer(t *testing.T) {
	p := prog(t,
		asm.Call.Label("f"),
		asm.LoadMem(asm.R0, asm.R0, 0, asm.DWord),
		asm.Return(),
		asm.Mov.Reg(asm.R0, asm.RFP).WithSymbol("f"),
		asm.Add.Imm(asm.R0, -8),
		storeImm(asm.R0, 0, 5, asm.DWord),
		asm.Return())
	_, err := run(t, p, nil)
	wantErr(t, err, ErrMemory, 1, "")
}

// Callee-saved registers survive a call that clobbers them.
func TestCalleeSaved(t *testing.T) {
	p := prog(t,
		asm.Mov.Imm(asm.R6, 6), asm.Mov.Imm(asm.R7, 7), asm.Mov.Imm(asm.R8, 8), asm.Mov.Imm(asm.R9, 9),
		asm.Call.Label("f"),
		asm.Add.Reg(asm.R0, asm.R6), asm.Add.Reg(asm.R0, asm.R7), asm.Add.Reg(asm.R0, asm.R8), asm.Add.Reg(asm.R0, asm.R9),
		asm.Return(),
		asm.Mov.Imm(asm.R6, 100).WithSymbol("f"), asm.Mov.Imm(asm.R7, 100), asm.Mov.Imm(asm.R8, 100), asm.Mov.Imm(asm.R9, 100),
		asm.Mov.Imm(asm.R0, 1000),
		asm.Return())
	if v := mustRun(t, p, nil); v != 1030 {
		t.Fatalf("got %d", v)
	}
}

func raw(insns ...Insn) *Program { return &Program{Name: "raw", Insns: insns} }

func TestInvalidPrograms(t *testing.T) {
	exit := Insn{Op: isa.OpExit}
	mov0 := Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK, Dst: 0, Imm: 7}
	cases := []struct {
		name     string
		p        *Program
		sentinel error
		pc       int
		detail   string
	}{
		{"unknown opcode", raw(mov0, Insn{Op: 0xff}, exit), ErrInvalid, 1, "invalid"},
		{"bad register", raw(Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK, Dst: 11}, exit), ErrInvalid, 0, "r11"},
		{"bad source register", raw(Insn{Op: isa.ClassALU64 | isa.AluADD | isa.SrcX, Dst: 0, Src: 12}, exit), ErrInvalid, 0, "r12"},
		{"write r10", raw(Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK, Dst: 10}, exit), ErrInvalid, 0, "r10"},
		{"jump past end", raw(mov0, Insn{Op: isa.ClassJMP | isa.JmpJA, Off: 5}, exit), ErrInvalid, 1, "outside the program"},
		{"jump before start", raw(mov0, Insn{Op: isa.ClassJMP | isa.JmpJEQ, Off: -3}, exit), ErrInvalid, 1, "outside the program"},
		{"jump into lddw", raw(Insn{Op: isa.ClassJMP | isa.JmpJA, Off: 1}, Insn{Op: isa.OpLdImm64}, Insn{}, exit), ErrInvalid, 0, "second half"},
		{"lddw without second half", raw(mov0, exit, Insn{Op: isa.OpLdImm64}), nil, 0, ""},
		{"lddw bad second half", raw(Insn{Op: isa.OpLdImm64}, Insn{Op: 7}, exit), ErrInvalid, 0, "second half"},
		{"call local out of range", raw(Insn{Op: isa.OpCall, Src: CallLocal, Imm: 100}, exit), ErrInvalid, 0, "outside"},
		{"unknown pseudo", raw(Insn{Op: isa.OpLdImm64, Src: 3}, Insn{}, exit), ErrInvalid, 0, "pseudo"},
		{"map index out of range", raw(Insn{Op: isa.OpLdImm64, Src: PseudoMapFD, Imm: 2}, Insn{}, exit), ErrInvalid, 0, "out of range"},
		{"sdiv bad offset", raw(Insn{Op: isa.ClassALU64 | isa.AluDIV | isa.SrcK, Off: 2, Imm: 1}, exit), ErrInvalid, 0, "offset"},
		{"movsx32 in alu32", raw(Insn{Op: isa.ClassALU | isa.AluMOV | isa.SrcX, Off: 32}, exit), ErrInvalid, 0, "offset"},
		{"bswap width", raw(Insn{Op: isa.ClassALU64 | isa.AluEND, Imm: 8}, exit), ErrInvalid, 0, "width"},
		{"atomic on a byte", raw(Insn{Op: isa.ClassSTX | isa.ModeATOMIC | isa.SizeB, Dst: 10, Src: 1, Off: -8}, exit), ErrInvalid, 0, "1 or 2 bytes"},
		{"fell off", raw(mov0), ErrFellOff, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			verr := Validate(c.p)
			_, err := run(t, c.p, nil)
			if c.sentinel == nil { // not reached at run time; Validate still reports it
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if verr == nil {
					t.Fatal("Validate accepted it")
				}
				return
			}
			wantErr(t, err, c.sentinel, c.pc, c.detail)
			if c.sentinel == ErrInvalid {
				wantErr(t, verr, ErrInvalid, c.pc, c.detail)
			}
		})
	}
}

// An invalid instruction that is never reached does not stop the run.
func TestUnreachedInvalid(t *testing.T) {
	p := raw(Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK, Imm: 3}, Insn{Op: isa.OpExit}, Insn{Op: 0xff})
	if v, err := run(t, p, nil); err != nil || v != 3 {
		t.Fatalf("%d, %v", v, err)
	}
	if Validate(p) == nil {
		t.Fatal("Validate accepted an invalid opcode")
	}
}

func TestLdAbsInd(t *testing.T) {
	pkt := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	p := raw(
		Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcX, Dst: 6, Src: 1},
		Insn{Op: isa.ClassLD | isa.ModeABS | isa.SizeW, Imm: 2},          // R0 = 0x02030405
		Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcX, Dst: 7, Src: 0}, //
		Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK, Dst: 2, Imm: 6}, //
		Insn{Op: isa.ClassLD | isa.ModeIND | isa.SizeH, Src: 2, Imm: 1},  // R0 = 0x0708
		Insn{Op: isa.ClassALU64 | isa.AluADD | isa.SrcX, Dst: 0, Src: 7}, //
		Insn{Op: isa.OpExit},
	)
	if v := mustRun(t, p, pkt); v != 0x02030405+0x0708 {
		t.Fatalf("got %#x", v)
	}
	oob := raw(Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK, Imm: 9}, Insn{Op: isa.ClassLD | isa.ModeABS | isa.SizeW, Imm: 8}, Insn{Op: isa.OpExit})
	if v := mustRun(t, oob, pkt); v != 0 {
		t.Fatalf("out-of-bounds LD_ABS returned %d, want 0 (program ends)", v)
	}
}

func TestMayGoto(t *testing.T) {
	// for (;;) { r0++; may_goto out } : ends after MayGotoLimit iterations
	p := raw(
		Insn{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK},
		Insn{Op: isa.ClassALU64 | isa.AluADD | isa.SrcK, Imm: 1},
		Insn{Op: isa.ClassJMP | isa.JmpJCOND, Off: 1},
		Insn{Op: isa.ClassJMP | isa.JmpJA, Off: -3},
		Insn{Op: isa.OpExit},
	)
	m := NewMachine()
	m.Budget = 4*MayGotoLimit + 10
	v, err := p.Run(m, nil)
	if err != nil || v != MayGotoLimit+1 {
		t.Fatalf("%d, %v", v, err)
	}
}
