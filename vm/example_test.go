package vm_test

import (
	"fmt"
	"unsafe"

	"github.com/userbpf/userbpf/vm"
)

// A host runs a program that looks up a value through a map helper the
// host installs, and increments it atomically.
func Example() {
	value := make([]uint64, 1) // stands for a map value in the region
	lookup := func(m *vm.Machine, mapRef, keyPtr, _, _, _ uint64) (uint64, error) {
		handle, ok := m.Map(mapRef)
		if !ok || handle != "counters" {
			return 0, nil // NULL
		}
		if _, ok := m.Bytes(keyPtr, 4, false); !ok {
			return 0, fmt.Errorf("key not readable")
		}
		addr := uintptr(unsafe.Pointer(&value[0]))
		m.AllowRange(addr, 8, true)
		return uint64(addr), nil
	}

	// r1 = map; r2 = fp-4 (key 0); r0 = lookup(); if r0 == 0 exit;
	// lock *(u64 *)(r0 + 0) += 5; r0 = *(u64 *)(r0 + 0); exit
	insns := []vm.Insn{
		{Op: 0x18, Dst: 1, Src: vm.PseudoMapFD, Imm: 0}, {},
		{Op: 0x62, Dst: 10, Off: -4, Imm: 0},
		{Op: 0xbf, Dst: 2, Src: 10},
		{Op: 0x07, Dst: 2, Imm: -4},
		{Op: 0x85, Imm: vm.FnMapLookupElem},
		{Op: 0x15, Dst: 0, Off: 4},
		{Op: 0xb7, Dst: 1, Imm: 5},
		{Op: 0xdb, Dst: 0, Src: 1},
		{Op: 0x79, Dst: 0, Src: 0},
		{Op: 0x95},
		{Op: 0x95},
	}
	prog := &vm.Program{Name: "count", Insns: insns, Maps: []vm.MapRef{{Handle: "counters"}}}
	if err := vm.Validate(prog); err != nil {
		fmt.Println(err)
		return
	}

	m := vm.NewMachine()
	m.Helpers.Set(vm.FnMapLookupElem, lookup)
	for i := 0; i < 3; i++ {
		r0, err := prog.Run(m, nil)
		fmt.Println(r0, err)
	}
	// Output:
	// 5 <nil>
	// 10 <nil>
	// 15 <nil>
}
