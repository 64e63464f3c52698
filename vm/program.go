package vm

import "unsafe"

// Insn is one 8-byte eBPF instruction, decoded (RFC 9669 §3). A 64-bit
// immediate load (BPF_LD | BPF_IMM | BPF_DW) takes two Insns, as on the
// wire; the second holds the upper 32 bits in Imm.
type Insn struct {
	Op  uint8 // opcode: class, size/mode or operation, source
	Dst uint8 // destination register 0-10
	Src uint8 // source register 0-10, or a pseudo kind for LD_IMM64 and CALL
	Off int16
	Imm int32
}

// Pseudo values in Src of LD_IMM64 (as the kernel's uapi).
const (
	PseudoMapFD    = 1 // Imm: index into Program.Maps; loads the map reference
	PseudoMapValue = 2 // Imm: index into Program.Maps; next Imm: offset into the map's single value
	PseudoFunc     = 4 // Imm: relative instruction offset of a subprogram; loads a callback reference (as clang emits &fn)
)

// Values the pseudo LD_IMM64 forms load. They lie in the non-canonical
// upper half of the address space, so no program can dereference them.
const (
	// MapRefBase + i is the value a PseudoMapFD load of Program.Maps[i]
	// puts in a register; Machine.Map decodes it.
	MapRefBase uint64 = 0xffff_b0f0_0000_0000
	// DynMapRefBase + i references the i-th map a helper registered with
	// Machine.NewMapRef during the current run (e.g. an inner map).
	DynMapRefBase uint64 = 0xffff_b0f1_0000_0000
	// FuncRefBase + pc is the value a PseudoFunc load puts in a register:
	// a callback at instruction pc, for Machine.CallFunc.
	FuncRefBase uint64 = 0xffff_b0f2_0000_0000
)

// Pseudo values in Src of CALL.
const (
	CallHelper = 0 // Imm: helper number
	CallLocal  = 1 // Imm: relative instruction offset of a bpf-to-bpf call
	CallKfunc  = 2 // Imm: kfunc id (in the host's kfunc table)
)

// MapRef is what the host tells the VM about a map a program references.
type MapRef struct {
	// Handle is the host's opaque map object; helpers get it back.
	Handle any
	// ValueAddr/ValueSize: for PseudoMapValue loads (global data in
	// .data/.bss/.rodata arrays), the address and size of the map's single
	// value; the range is readable by the program, and writable unless
	// ReadOnly.
	ValueAddr uintptr
	ValueSize uint32
	ReadOnly  bool
	// Array, for a plain ARRAY map, lets the VM inline bpf_map_lookup_elem
	// calls on it (see ArrayLayout); nil makes every lookup a helper call.
	Array *ArrayLayout
}

// Program is a loaded program: instructions with map references resolved
// to indexes into Maps.
type Program struct {
	Name  string
	Insns []Insn
	Maps  []MapRef

	prep unsafe.Pointer // *code, see prepared
}
