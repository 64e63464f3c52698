package vm

import (
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/internal/isa"
)

// xinsn is a prepared instruction: the wire fields with the opcode
// replaced by an internal operation code (see opcodes.go).
type xinsn struct {
	op   uint8
	regs uint8 // dst | src<<4
	off  int16
	imm  int32
}

// word returns the instruction as one integer: op in bits 0-7, regs in
// 8-15, off in 16-31, imm in 32-63.
func (x *xinsn) word() uint64 {
	if hostBigEndian {
		return uint64(x.op) | uint64(x.regs)<<8 | uint64(uint16(x.off))<<16 | uint64(uint32(x.imm))<<32
	}
	return *(*uint64)(unsafe.Pointer(x))
}

// code is the prepared, run-ready form of a Program. It is immutable and
// shared by every Machine that runs the program.
type code struct {
	insns   []xinsn // len(Program.Insns)+1: the last one is opFellOff
	reasons []string
	// callbacks marks the instructions a PseudoFunc load names: the only
	// entries CallFunc accepts.
	callbacks []bool
	globals   []memRange
	prog      *Program

	// identity of the Program fields this code was prepared from
	srcPtr  *Insn
	srcLen  int
	mapsPtr *MapRef
	mapsLen int
}

// prepared returns p's run-ready code, preparing it on first use or when
// p.Insns or p.Maps were replaced since.
func (p *Program) prepared() *code {
	c := (*code)(atomic.LoadPointer(&p.prep))
	if c != nil && c.srcPtr == unsafe.SliceData(p.Insns) && c.srcLen == len(p.Insns) &&
		c.mapsPtr == unsafe.SliceData(p.Maps) && c.mapsLen == len(p.Maps) && c.prog == p {
		return c
	}
	c = prepare(p)
	atomic.StorePointer(&p.prep, unsafe.Pointer(c))
	return c
}

// Prepare decodes p for the interpreter now rather than on its first Run.
// Run prepares lazily; Prepare is for hosts that want the cost at load.
// A Program must not be modified in place once prepared (replacing
// p.Insns or p.Maps with new slices is noticed and re-prepares).
func (p *Program) Prepare() { p.prepared() }

// Validate checks, once, what the interpreter would otherwise find only
// when it reaches a bad instruction: unknown opcodes and reserved fields,
// register numbers, writes to R10, jump and call targets outside the
// program or into the second half of a 64-bit immediate load, unpaired
// LD_IMM64, and map indexes. It returns the first problem as an *Error
// naming the instruction, or nil.
func Validate(p *Program) error {
	c := prepare(p)
	for pc, x := range c.insns[:len(c.insns)-1] {
		if x.op == opInvalid {
			return &Error{Program: p.Name, PC: pc, Insn: p.Insns[pc], Err: ErrInvalid, Detail: c.reasons[x.imm]}
		}
	}
	return nil
}

func prepare(p *Program) *code {
	n := len(p.Insns)
	c := &code{
		insns:   make([]xinsn, n+1),
		prog:    p,
		srcPtr:  unsafe.SliceData(p.Insns),
		srcLen:  n,
		mapsPtr: unsafe.SliceData(p.Maps),
		mapsLen: len(p.Maps),
	}
	for _, m := range p.Maps {
		if m.ValueAddr != 0 && m.ValueSize != 0 {
			c.globals = append(c.globals, memRange{lo: uint64(m.ValueAddr), n: uint64(m.ValueSize), w: !m.ReadOnly})
		}
	}
	// Mark second halves of LD_IMM64 first: jumps must not land there.
	hi := make([]bool, n)
	for i := 0; i < n; i++ {
		if p.Insns[i].Op == isa.OpLdImm64 && i+1 < n {
			hi[i+1] = true
			i++
		}
	}
	for i := 0; i < n; i++ {
		if hi[i] {
			c.insns[i] = xinsn{op: opLdImm64Hi, imm: p.Insns[i].Imm}
			continue
		}
		x, high, reason := translate(p, i, hi)
		if reason != "" {
			x = xinsn{op: opInvalid, imm: int32(len(c.reasons))}
			c.reasons = append(c.reasons, reason)
		}
		c.insns[i] = x
		if x.op == opLdImm64 {
			i++
			c.insns[i] = xinsn{op: opLdImm64Hi, imm: high}
		}
	}
	c.insns[n] = xinsn{op: opFellOff}
	c.callbacks = callbackEntries(p.Insns)
	inlineArrayLookups(c, p)
	inlineSpinLocks(c)
	fuseMoves(c)
	return c
}

var aluOps64 = [16][2]uint8{
	isa.AluADD >> 4:  {opAdd64K, opAdd64X},
	isa.AluSUB >> 4:  {opSub64K, opSub64X},
	isa.AluMUL >> 4:  {opMul64K, opMul64X},
	isa.AluDIV >> 4:  {opDiv64K, opDiv64X},
	isa.AluOR >> 4:   {opOr64K, opOr64X},
	isa.AluAND >> 4:  {opAnd64K, opAnd64X},
	isa.AluLSH >> 4:  {opLsh64K, opLsh64X},
	isa.AluRSH >> 4:  {opRsh64K, opRsh64X},
	isa.AluNEG >> 4:  {opNeg64, opInvalid},
	isa.AluMOD >> 4:  {opMod64K, opMod64X},
	isa.AluXOR >> 4:  {opXor64K, opXor64X},
	isa.AluMOV >> 4:  {opMov64K, opMov64X},
	isa.AluARSH >> 4: {opArsh64K, opArsh64X},
}

var aluOps32 = [16][2]uint8{
	isa.AluADD >> 4:  {opAdd32K, opAdd32X},
	isa.AluSUB >> 4:  {opSub32K, opSub32X},
	isa.AluMUL >> 4:  {opMul32K, opMul32X},
	isa.AluDIV >> 4:  {opDiv32K, opDiv32X},
	isa.AluOR >> 4:   {opOr32K, opOr32X},
	isa.AluAND >> 4:  {opAnd32K, opAnd32X},
	isa.AluLSH >> 4:  {opLsh32K, opLsh32X},
	isa.AluRSH >> 4:  {opRsh32K, opRsh32X},
	isa.AluNEG >> 4:  {opNeg32, opInvalid},
	isa.AluMOD >> 4:  {opMod32K, opMod32X},
	isa.AluXOR >> 4:  {opXor32K, opXor32X},
	isa.AluMOV >> 4:  {opMov32K, opMov32X},
	isa.AluARSH >> 4: {opArsh32K, opArsh32X},
}

// jmpOps[cond>>4][class==JMP32][source==X]
var jmpOps = [16][2][2]uint8{
	isa.JmpJEQ >> 4:  {{opJEqK, opJEqX}, {opJEq32K, opJEq32X}},
	isa.JmpJGT >> 4:  {{opJGtK, opJGtX}, {opJGt32K, opJGt32X}},
	isa.JmpJGE >> 4:  {{opJGeK, opJGeX}, {opJGe32K, opJGe32X}},
	isa.JmpJSET >> 4: {{opJSetK, opJSetX}, {opJSet32K, opJSet32X}},
	isa.JmpJNE >> 4:  {{opJNeK, opJNeX}, {opJNe32K, opJNe32X}},
	isa.JmpJSGT >> 4: {{opJSGtK, opJSGtX}, {opJSGt32K, opJSGt32X}},
	isa.JmpJSGE >> 4: {{opJSGeK, opJSGeX}, {opJSGe32K, opJSGe32X}},
	isa.JmpJLT >> 4:  {{opJLtK, opJLtX}, {opJLt32K, opJLt32X}},
	isa.JmpJLE >> 4:  {{opJLeK, opJLeX}, {opJLe32K, opJLe32X}},
	isa.JmpJSLT >> 4: {{opJSLtK, opJSLtX}, {opJSLt32K, opJSLt32X}},
	isa.JmpJSLE >> 4: {{opJSLeK, opJSLeX}, {opJSLe32K, opJSLe32X}},
}
