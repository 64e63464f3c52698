package vm

import (
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"github.com/userbpf/userbpf/internal/benchprog"
)

// cpuClock measures the CPU time of the benchmark's thread, which on a
// loaded machine says more about the interpreter than wall time does.
type cpuClock struct{ start time.Duration }

func startCPU(b *testing.B) *cpuClock {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	b.ResetTimer()
	return &cpuClock{benchprog.ThreadCPU()}
}

// report adds cpu-ns/op and, if perOp > 0, wall and CPU ns per unit.
func (c *cpuClock) report(b *testing.B, perOp float64, unit string) {
	cpu := float64((benchprog.ThreadCPU() - c.start).Nanoseconds())
	b.ReportMetric(cpu/float64(b.N), "cpu-ns/op")
	if perOp > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/perOp, "ns/"+unit)
		b.ReportMetric(cpu/float64(b.N)/perOp, "cpu-ns/"+unit)
	}
}

// aluLoop is benchprog.ALULoop as a Program.
func aluLoop(t testing.TB, n int32) *Program {
	return prog(t, benchprog.ALULoop(n)...)
}

func BenchmarkALULoop(b *testing.B) {
	p := aluLoop(b, 10000)
	m := NewMachine()
	m.Budget = 1 << 30
	if _, err := p.Run(m, nil); err != nil {
		b.Fatal(err)
	}
	insns := m.Budget - m.Remaining()
	b.ReportAllocs()
	clk := startCPU(b)
	for i := 0; i < b.N; i++ {
		if _, err := p.Run(m, nil); err != nil {
			b.Fatal(err)
		}
	}
	clk.report(b, float64(insns), "insn")
}

// BenchmarkRunEmpty is the fixed cost of a Run: `r0 = 0; exit`.
func BenchmarkRunEmpty(b *testing.B) {
	p := prog(b, asm.Mov.Imm(asm.R0, 0), asm.Return())
	m := NewMachine()
	ctx := make([]byte, 64)
	p.Run(m, ctx)
	b.ReportAllocs()
	clk := startCPU(b)
	for i := 0; i < b.N; i++ {
		p.Run(m, ctx)
	}
	clk.report(b, 0, "")
}

// BenchmarkMemLoop: loads and stores on the stack and ctx per iteration.
func BenchmarkMemLoop(b *testing.B) {
	p := prog(b,
		asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R2, 0),
		asm.LoadMem(asm.R3, asm.R1, 8, asm.DWord).WithSymbol("loop"),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.StoreMem(asm.RFP, -8, asm.R3, asm.DWord),
		asm.LoadMem(asm.R4, asm.RFP, -8, asm.DWord),
		asm.StoreMem(asm.R1, 8, asm.R4, asm.DWord),
		asm.Add.Imm(asm.R2, 1),
		asm.JLT.Imm(asm.R2, 10000, "loop"),
		asm.Return())
	m := NewMachine()
	m.Budget = 1 << 30
	ctx := make([]byte, 64)
	p.Run(m, ctx)
	insns := m.Budget - m.Remaining()
	b.ReportAllocs()
	clk := startCPU(b)
	for i := 0; i < b.N; i++ {
		p.Run(m, ctx)
	}
	clk.report(b, float64(insns), "insn")
}

// BenchmarkHelperCall: a loop calling bpf_get_smp_processor_id.
func BenchmarkHelperCall(b *testing.B) {
	p := prog(b,
		asm.Mov.Imm(asm.R6, 0),
		call(FnGetSmpProcessorID).WithSymbol("loop"),
		asm.Add.Imm(asm.R6, 1),
		asm.JLT.Imm(asm.R6, 1000, "loop"),
		asm.Return())
	m := NewMachine()
	p.Run(m, nil)
	b.ReportAllocs()
	clk := startCPU(b)
	for i := 0; i < b.N; i++ {
		p.Run(m, nil)
	}
	clk.report(b, 1000, "call")
}

// BenchmarkValueLoop: a lookup-style helper hands out a value once, then
// the loop loads, adds to and stores into it (memory outside the stack).
func BenchmarkValueLoop(b *testing.B) {
	val := alignedBuf(16)
	m := NewMachine()
	m.Helpers.Set(FnMapLookupElem, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		a := uintptr(unsafe.Pointer(&val[0]))
		m.AllowRange(a, 16, true)
		return uint64(a), nil
	})
	p := prog(b,
		asm.Mov.Imm(asm.R1, 0), call(FnMapLookupElem), asm.Mov.Reg(asm.R6, asm.R0), asm.Mov.Imm(asm.R2, 0),
		asm.LoadMem(asm.R3, asm.R6, 8, asm.DWord).WithSymbol("loop"),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.StoreMem(asm.R6, 8, asm.R3, asm.DWord),
		asm.Add.Imm(asm.R2, 1),
		asm.JLT.Imm(asm.R2, 10000, "loop"),
		asm.Return())
	m.Budget = 1 << 30
	p.Run(m, nil)
	insns := m.Budget - m.Remaining()
	b.ReportAllocs()
	clk := startCPU(b)
	for i := 0; i < b.N; i++ {
		p.Run(m, nil)
	}
	clk.report(b, float64(insns), "insn")
}
