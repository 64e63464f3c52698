// Package isa holds the eBPF instruction encoding (RFC 9669 §3-§5): the
// fields of the opcode byte that the interpreter (package vm) decodes and
// the verifier checks, in one place.
package isa

// Instruction classes: the opcode's low three bits.
const (
	ClassLD    = 0x00
	ClassLDX   = 0x01
	ClassST    = 0x02
	ClassSTX   = 0x03
	ClassALU   = 0x04
	ClassJMP   = 0x05
	ClassJMP32 = 0x06
	ClassALU64 = 0x07
)

// Source of an ALU or jump operand: the immediate or the source register.
const (
	SrcK = 0x00
	SrcX = 0x08
)

// Sizes of loads and stores.
const (
	SizeW  = 0x00
	SizeH  = 0x08
	SizeB  = 0x10
	SizeDW = 0x18
)

// Modes of loads and stores.
const (
	ModeIMM    = 0x00
	ModeABS    = 0x20
	ModeIND    = 0x40
	ModeMEM    = 0x60
	ModeMEMSX  = 0x80
	ModeATOMIC = 0xc0
)

// ALU operations: the opcode's high nibble.
const (
	AluADD  = 0x00
	AluSUB  = 0x10
	AluMUL  = 0x20
	AluDIV  = 0x30
	AluOR   = 0x40
	AluAND  = 0x50
	AluLSH  = 0x60
	AluRSH  = 0x70
	AluNEG  = 0x80
	AluMOD  = 0x90
	AluXOR  = 0xa0
	AluMOV  = 0xb0
	AluARSH = 0xc0
	AluEND  = 0xd0
)

// Jump operations: the opcode's high nibble.
const (
	JmpJA    = 0x00
	JmpJEQ   = 0x10
	JmpJGT   = 0x20
	JmpJGE   = 0x30
	JmpJSET  = 0x40
	JmpJNE   = 0x50
	JmpJSGT  = 0x60
	JmpJSGE  = 0x70
	JmpCALL  = 0x80
	JmpEXIT  = 0x90
	JmpJLT   = 0xa0
	JmpJLE   = 0xb0
	JmpJSLT  = 0xc0
	JmpJSLE  = 0xd0
	JmpJCOND = 0xe0
)

// Atomic operations: the immediate of a BPF_ATOMIC instruction.
const (
	AtomicFetch    = 0x01
	AtomicXchg     = 0xe0 | AtomicFetch
	AtomicCmpXchg  = 0xf0 | AtomicFetch
	AtomicLoadAcq  = 0x100
	AtomicStoreRel = 0x110
)

// Whole opcodes.
const (
	OpLdImm64 = ClassLD | ModeIMM | SizeDW // 64-bit immediate load (two slots)
	OpCall    = ClassJMP | JmpCALL
	OpExit    = ClassJMP | JmpEXIT
)
