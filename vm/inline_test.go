package vm

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

// An ARRAY lookup the VM inlines gives what the helper would: the value's
// address (readable and writable within the value only), NULL past the
// end; a key that is not on the stack, or an R1 that is not certainly the
// array, goes to the helper.
func TestInlinedArrayLookup(t *testing.T) {
	vals := alignedBuf(4 * 16) // 4 values of 12 bytes, stride 16
	first := uintptr(unsafe.Pointer(&vals[0]))
	layout := &ArrayLayout{First: first, Stride: 16, Len: 4, ValueSize: 12}
	helperCalls := 0
	m := NewMachine()
	m.Helpers.Set(FnMapLookupElem, func(m *Machine, _, key, _, _, _ uint64) (uint64, error) {
		helperCalls++
		return 0, nil
	})
	// lookup(key): store key at fp-4, look it up, write 0x55 at +8 of the
	// value and return the address (0 if NULL).
	lookup := func(key int32, extra ...asm.Instruction) *Program {
		insns := []asm.Instruction{
			asm.Mov.Imm(asm.R6, key), asm.StoreMem(asm.R10, -4, asm.R6, asm.Word),
			asm.Mov.Reg(asm.R2, asm.R10), asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, 0),
		}
		insns = append(insns, extra...)
		insns = append(insns,
			call(FnMapLookupElem),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 0x55), asm.StoreMem(asm.R0, 8, asm.R1, asm.Word),
			asm.Return().WithSymbol("out"))
		p := prog(t, insns...)
		p.Maps = []MapRef{{Handle: "array", Array: layout}}
		return p
	}
	p := lookup(2)
	if op := p.prepared().insns[6].op; op != opCallArrayLookup {
		t.Fatalf("the lookup was not inlined (op %d)", op)
	}
	if got, err := p.Run(m, nil); err != nil || uintptr(got) != first+32 {
		t.Fatalf("lookup(2) = %#x, %v; want %#x", got, err, first+32)
	}
	if vals[40] != 0x55 || helperCalls != 0 {
		t.Fatalf("value 2 not written through the inlined pointer (%x), or the helper ran (%d)", vals[32:48], helperCalls)
	}
	if got, err := lookup(4).Run(m, nil); err != nil || got != 0 {
		t.Fatalf("lookup past the end = %#x, %v; want NULL", got, err)
	}
	// The program may touch its value only: 4 bytes past it (into the next
	// value's padding... and beyond) is a fault.
	over := prog(t,
		asm.Mov.Imm(asm.R6, 0), asm.StoreMem(asm.R10, -4, asm.R6, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10), asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, 0), call(FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R0, asm.R0, 12, asm.Word),
		asm.Return().WithSymbol("out"))
	over.Maps = []MapRef{{Handle: "array", Array: layout}}
	if _, err := over.Run(m, nil); err == nil {
		t.Fatal("a read past the value's 12 bytes succeeded")
	}
	// A read-only layout refuses the store.
	ro := *layout
	ro.ReadOnly = true
	p = lookup(1)
	p.Maps[0].Array = &ro
	if _, err := p.Run(m, nil); err == nil {
		t.Fatal("a store into a read-only value succeeded")
	}

	// Not inlined: R1 rewritten after the map load, or a jump target
	// between the load and the call.
	p = lookup(1, asm.Mov.Imm(asm.R1, 0))
	if op := p.prepared().insns[7].op; op != opCallHelper {
		t.Fatalf("a lookup with R1 overwritten was inlined (op %d)", op)
	}
	p = lookup(1, asm.Ja.Label("next"), asm.Mov.Imm(asm.R0, 0).WithSymbol("next"))
	if op := p.prepared().insns[8].op; op != opCallHelper {
		t.Fatalf("a lookup behind a jump target was inlined (op %d)", op)
	}
	// A key outside the stack goes to the helper.
	helperCalls = 0
	key := alignedBuf(8)
	viaHelper := prog(t,
		asm.LoadImm(asm.R2, int64(uintptr(unsafe.Pointer(&key[0]))), asm.DWord),
		asm.LoadMapPtr(asm.R1, 0), call(FnMapLookupElem), asm.Return())
	viaHelper.Maps = []MapRef{{Handle: "array", Array: layout}}
	if _, err := viaHelper.Run(m, nil); err != nil || helperCalls != 1 {
		t.Fatalf("a key off the stack: %v, %d helper calls; want the helper", err, helperCalls)
	}
}
