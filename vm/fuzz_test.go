package vm

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

// FuzzRun: arbitrary bytes as an instruction stream, run with a small
// budget against a ctx, a writable and a read-only global value and every
// default helper, must never crash or panic the process, and must leave
// memory outside what the program may touch alone.
func FuzzRun(f *testing.F) {
	seeds := []asm.Instructions{
		{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		{asm.LoadMem(asm.R0, asm.R1, 0, asm.DWord), asm.Return()},
		{asm.LoadMapValue(asm.R1, 0, 8), asm.Mov.Imm(asm.R2, 1), atomicInsn(asm.FetchAdd, asm.R1, asm.R2, asm.DWord, 0), asm.Return()},
		{asm.Mov.Imm(asm.R1, 4), funcRef(asm.R2, "cb"), asm.Mov.Imm(asm.R3, 0), asm.Mov.Imm(asm.R4, 0), call(FnLoop), asm.Return(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("cb"), asm.Return()},
		{asm.Call.Label("f"), asm.Return(), storeImm(asm.RFP, -8, 1, asm.DWord).WithSymbol("f"), asm.Call.Label("f"), asm.Return()},
		{asm.Mov.Imm(asm.R1, 0), asm.Mov.Imm(asm.R2, 8), asm.Mov.Reg(asm.R3, asm.RFP), call(FnProbeReadKernel), asm.Return()},
	}
	for _, s := range seeds {
		insns := toVM(f, s)
		f.Add(Encode(insns))
	}
	f.Add([]byte{0x18, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, _ := Decode(b[:len(b)/InsnSize*InsnSize])
		guard := alignedBuf(64 * 3)
		data := guard[64:96]
		rodata := guard[128:160]
		p := &Program{Name: "fuzz", Insns: insns, Maps: []MapRef{
			{ValueAddr: uintptr(unsafe.Pointer(&data[0])), ValueSize: 32},
			{ValueAddr: uintptr(unsafe.Pointer(&rodata[0])), ValueSize: 32, ReadOnly: true},
		}}
		_ = Validate(p)
		m := NewMachine()
		m.Budget = 5000
		ctxBuf := alignedBuf(64 + 32 + 64)
		ctx := ctxBuf[64:96]
		p.Run(m, ctx)
		for i, c := range guard {
			if c != 0 && !(i >= 64 && i < 96) {
				t.Fatalf("byte %d outside the writable value changed", i)
			}
		}
		for i, c := range ctxBuf {
			if c != 0 && !(i >= 64 && i < 96) {
				t.Fatalf("byte %d outside ctx changed", i)
			}
		}
	})
}
