package vm

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

// FuzzRunInlined is FuzzRun with an ARRAY layout (inlined lookups), LockTag
// (inlined spin locks) and a self tail call: no crash, and no write
// outside the writable values and ctx.
func FuzzRunInlined(f *testing.F) {
	seeds := []asm.Instructions{
		{asm.Mov.Imm(asm.R6, 1), asm.StoreMem(asm.R10, -4, asm.R6, asm.Word), asm.Mov.Reg(asm.R2, asm.R10), asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, 2), call(FnMapLookupElem), asm.JEq.Imm(asm.R0, 0, "o"), asm.Mov.Reg(asm.R1, asm.R0), call(FnSpinLock),
			asm.Mov.Reg(asm.R1, asm.R0), call(FnSpinUnlock), asm.Return().WithSymbol("o")},
		{asm.Call.Label("f"), asm.Return(), asm.Mov.Imm(asm.R3, 0).WithSymbol("f"), call(FnTailCall), asm.Return()},
	}
	for _, s := range seeds {
		f.Add(Encode(toVM(f, s)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, _ := Decode(b[:len(b)/InsnSize*InsnSize])
		guard := alignedBuf(64*3 + 64)
		data := guard[64:96]
		rodata := guard[128:160]
		arr := guard[192:224] // 2 values of 16
		p := &Program{Name: "fuzz", Insns: insns, Maps: []MapRef{
			{ValueAddr: uintptr(unsafe.Pointer(&data[0])), ValueSize: 32},
			{ValueAddr: uintptr(unsafe.Pointer(&rodata[0])), ValueSize: 32, ReadOnly: true},
			{Handle: "arr", Array: &ArrayLayout{First: uintptr(unsafe.Pointer(&arr[0])), Stride: 16, Len: 2, ValueSize: 12}},
		}}
		m := NewMachine()
		m.LockTag = 3
		m.Helpers.Set(FnSpinLock, func(m *Machine, a, _, _, _, _ uint64) (uint64, error) {
			if a%4 != 0 || !m.CanAccess(a, 4, true) || m.HeldLock() != 0 {
				return 0, errBad
			}
			m.SetHeldLock(a)
			return 0, nil
		})
		m.Helpers.Set(FnSpinUnlock, func(m *Machine, a, _, _, _, _ uint64) (uint64, error) {
			if m.HeldLock() != a || a == 0 {
				return 0, errBad
			}
			m.SetHeldLock(0)
			return 0, nil
		})
		m.Helpers.Set(FnTailCall, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
			m.TailCall(p)
			return 0, nil
		})
		m.Budget = 5000
		ctxBuf := alignedBuf(64 + 32 + 64)
		ctx := ctxBuf[64:96]
		p.Run(m, ctx)
		for i, c := range guard {
			if c != 0 && !(i >= 64 && i < 96) && !(i >= 192 && i < 204) && !(i >= 208 && i < 220) {
				t.Fatalf("byte %d outside the writable values changed", i)
			}
		}
		for i, c := range ctxBuf {
			if c != 0 && !(i >= 64 && i < 96) {
				t.Fatalf("byte %d outside ctx changed", i)
			}
		}
	})
}

type badErr struct{}

func (badErr) Error() string { return "bad" }

var errBad = badErr{}
