package vm

import (
	"testing"

	"github.com/cilium/ebpf/asm"
)

// A move fused with the operation after it gives the results of the two
// instructions, a jump to the second still runs it alone, and the budget
// counts both: with one instruction left, the move runs and the budget
// stops at the operation.
func TestFusedMoves(t *testing.T) {
	for _, c := range []struct {
		op   asm.ALUOp
		imm  int32
		want uint64
	}{
		{asm.Add, -4, 96}, {asm.And, 0x0f, 4}, {asm.Or, 1, 101}, {asm.Xor, 0xff, 155},
		{asm.LSh, 3, 800}, {asm.RSh, 2, 25}, {asm.ArSh, 2, 25}, {asm.Mul, 3, 300},
	} {
		p := prog(t, asm.Mov.Imm(asm.R1, 100), asm.Mov.Reg(asm.R2, asm.R1), c.op.Imm(asm.R2, c.imm), asm.Mov.Reg(asm.R0, asm.R2), asm.Return())
		if op := p.prepared().insns[1].op; op < opMovAdd64K || op > opMov32Add32K {
			t.Fatalf("%v: not fused (op %d)", c.op, op)
		}
		if v := mustRun(t, p, nil); v != c.want {
			t.Errorf("%v: got %d, want %d", c.op, v, c.want)
		}
	}
	p32 := prog(t, asm.LoadImm(asm.R1, -1, asm.DWord), asm.Mov.Reg32(asm.R2, asm.R1), asm.Add.Imm32(asm.R2, 2), asm.Mov.Reg(asm.R0, asm.R2), asm.Return())
	if v := mustRun(t, p32, nil); v != 1 {
		t.Errorf("mov32 + add32: got %#x, want 1 (32-bit wrap, zero-extended)", v)
	}
	// A jump onto the operation skips the move.
	jump := prog(t,
		asm.Mov.Imm(asm.R1, 5), asm.Mov.Imm(asm.R2, 100),
		asm.JEq.Imm(asm.R1, 5, "op"),
		asm.Mov.Reg(asm.R2, asm.R1),
		asm.Add.Imm(asm.R2, 3).WithSymbol("op"),
		asm.Mov.Reg(asm.R0, asm.R2), asm.Return())
	if v := mustRun(t, jump, nil); v != 103 {
		t.Errorf("jump onto the fused operation: got %d, want 103", v)
	}
	// Budget: 3 instructions run (mov, mov, add) with a budget of 3; with
	// 2 the move runs and the add is where the budget stops.
	p := prog(t, asm.Mov.Imm(asm.R1, 100), asm.Mov.Reg(asm.R2, asm.R1), asm.Add.Imm(asm.R2, 1), asm.Mov.Reg(asm.R0, asm.R2), asm.Return())
	m := NewMachine()
	m.Budget = 5
	if v, err := p.Run(m, nil); err != nil || v != 101 || m.Remaining() != 0 {
		t.Fatalf("budget 5: %d, %v, %d left; want 101, nil, 0", v, err, m.Remaining())
	}
	m.Budget = 2
	_, err := p.Run(m, nil)
	wantErr(t, err, ErrBudget, 2, "")
}
