// Package benchprog holds what the interpreter's go test benchmarks and
// `userbpf bench vm` share, so both measure the same thing: the ALU-heavy
// loop and the thread CPU clock.
package benchprog

import (
	"time"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// ALUInsnsPerIter is the number of instructions in one iteration of
// ALULoop's body.
const ALUInsnsPerIter = 12

// ALULoop is an ALU-heavy loop of iters iterations: 64- and 32-bit
// arithmetic, shifts, a multiply and a conditional jump per iteration,
// then exit (4 instructions outside the loop).
func ALULoop(iters int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R1, 0), asm.Mov.Imm(asm.R2, 12345),
		asm.Add.Reg(asm.R0, asm.R1).WithSymbol("loop"),
		asm.Xor.Reg(asm.R2, asm.R0),
		asm.Mul.Imm(asm.R2, 3),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.RSh.Imm(asm.R3, 7),
		asm.Add.Reg(asm.R0, asm.R3),
		asm.Mov.Reg32(asm.R4, asm.R0),
		asm.Add.Imm32(asm.R4, 1),
		asm.Sub.Reg(asm.R0, asm.R4),
		asm.And.Imm(asm.R0, 0x7fffffff),
		asm.Add.Imm(asm.R1, 1),
		asm.JLT.Imm(asm.R1, iters, "loop"),
		asm.Return(),
	}
}

// ThreadCPU is the calling thread's CPU time: on a loaded machine it says
// more about the interpreter than the wall clock does, and it is what the
// kernel's BPF_PROG_RUN reports (its timer stops while it is rescheduled).
func ThreadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
