package vm

import (
	"fmt"

	"github.com/userbpf/userbpf/internal/isa"
)

// translate decodes instruction i of p into its prepared form. For a
// 64-bit immediate load it returns the resolved value's high half in
// high (the low half is in x.imm). A non-empty reason means the
// instruction is invalid; the interpreter reports it if reached.
func translate(p *Program, i int, hi []bool) (x xinsn, high int32, reason string) {
	ins := p.Insns[i]
	n := len(p.Insns)
	x = xinsn{regs: ins.Dst&15 | ins.Src<<4, off: ins.Off, imm: ins.Imm}
	class := ins.Op & 0x07

	// target checks a jump or call to pc i+1+rel.
	target := func(rel int) string {
		t := i + 1 + rel
		if t < 0 || t >= n {
			return fmt.Sprintf("jump target %d outside the program (0..%d)", t, n-1)
		}
		if hi[t] {
			return fmt.Sprintf("jump target %d is the second half of a 64-bit immediate load", t)
		}
		return ""
	}
	badReg := func(r uint8) bool { return r > 10 }

	switch class {
	case isa.ClassALU, isa.ClassALU64:
		is64 := class == isa.ClassALU64
		op := ins.Op & 0xf0
		isX := ins.Op&isa.SrcX != 0
		if badReg(ins.Dst) || ins.Dst == 10 {
			return x, 0, fmt.Sprintf("invalid destination register r%d", ins.Dst)
		}
		if op == isa.AluEND {
			switch {
			case ins.Src != 0 || ins.Off != 0:
				return x, 0, "byte swap with reserved fields set"
			case ins.Imm != 16 && ins.Imm != 32 && ins.Imm != 64:
				return x, 0, fmt.Sprintf("byte swap of invalid width %d", ins.Imm)
			case is64 && isX:
				return x, 0, "invalid opcode: ALU64 END with source bit set"
			}
			swap := is64 || (isX != hostBigEndian) // BSWAP, or a conversion that swaps on this host
			switch {
			case swap && ins.Imm == 16:
				x.op = opSwap16
			case swap && ins.Imm == 32:
				x.op = opSwap32
			case swap:
				x.op = opSwap64
			case ins.Imm == 16:
				x.op = opZext16
			case ins.Imm == 32:
				x.op = opZext32
			default:
				x.op = opNop
			}
			return x, 0, ""
		}
		tab := &aluOps32
		if is64 {
			tab = &aluOps64
		}
		xi := 0
		if isX {
			xi = 1
		}
		x.op = tab[op>>4][xi]
		if x.op == opInvalid {
			return x, 0, fmt.Sprintf("invalid ALU opcode %#02x", ins.Op)
		}
		if isX {
			if badReg(ins.Src) {
				return x, 0, fmt.Sprintf("invalid source register r%d", ins.Src)
			}
			if ins.Imm != 0 {
				return x, 0, "register-source ALU op with nonzero imm"
			}
		} else if ins.Src != 0 {
			return x, 0, "immediate-source ALU op with nonzero src"
		}
		switch {
		case ins.Off == 0:
		case ins.Off == 1 && (op == isa.AluDIV || op == isa.AluMOD):
			x.op++ // the signed variant follows the unsigned one for both sources
			x.op++
		case op == isa.AluMOV && isX && (ins.Off == 8 || ins.Off == 16 || (ins.Off == 32 && is64)):
			switch {
			case is64 && ins.Off == 8:
				x.op = opMovSX64B
			case is64 && ins.Off == 16:
				x.op = opMovSX64H
			case is64:
				x.op = opMovSX64W
			case ins.Off == 8:
				x.op = opMovSX32B
			default:
				x.op = opMovSX32H
			}
		default:
			return x, 0, fmt.Sprintf("ALU opcode %#02x with invalid offset %d", ins.Op, ins.Off)
		}
		if op == isa.AluNEG && ins.Imm != 0 {
			return x, 0, "neg with nonzero imm"
		}
		return x, 0, ""

	case isa.ClassJMP, isa.ClassJMP32:
		is32 := class == isa.ClassJMP32
		op := ins.Op & 0xf0
		isX := ins.Op&isa.SrcX != 0
		switch op {
		case isa.JmpJA:
			if isX || ins.Dst != 0 || ins.Src != 0 {
				return x, 0, "ja with reserved fields set"
			}
			if is32 {
				if ins.Off != 0 {
					return x, 0, "gotol with nonzero offset"
				}
				x.op = opJA32
				return x, 0, target(int(ins.Imm))
			}
			if ins.Imm != 0 {
				return x, 0, "ja with nonzero imm"
			}
			x.op = opJA
			return x, 0, target(int(ins.Off))
		case isa.JmpCALL:
			if is32 || isX || ins.Dst != 0 || ins.Off != 0 {
				return x, 0, "call with reserved fields set"
			}
			switch ins.Src {
			case CallHelper:
				x.op = opCallHelper
			case CallLocal:
				x.op = opCallLocal
				return x, 0, target(int(ins.Imm))
			case CallKfunc:
				x.op = opCallKfunc
			default:
				return x, 0, fmt.Sprintf("call with invalid kind %d", ins.Src)
			}
			return x, 0, ""
		case isa.JmpEXIT:
			if is32 || isX || ins.Dst != 0 || ins.Src != 0 || ins.Off != 0 || ins.Imm != 0 {
				return x, 0, "exit with reserved fields set"
			}
			x.op = opExit
			return x, 0, ""
		case isa.JmpJCOND:
			if is32 || isX || ins.Dst != 0 || ins.Src != 0 || ins.Imm != 0 {
				return x, 0, "may_goto with reserved fields set"
			}
			x.op = opMayGoto
			return x, 0, target(int(ins.Off))
		}
		ci, xi := 0, 0
		if is32 {
			ci = 1
		}
		if isX {
			xi = 1
		}
		x.op = jmpOps[op>>4][ci][xi]
		if x.op == opInvalid {
			return x, 0, fmt.Sprintf("invalid jump opcode %#02x", ins.Op)
		}
		if badReg(ins.Dst) {
			return x, 0, fmt.Sprintf("invalid destination register r%d", ins.Dst)
		}
		if isX {
			if badReg(ins.Src) {
				return x, 0, fmt.Sprintf("invalid source register r%d", ins.Src)
			}
			if ins.Imm != 0 {
				return x, 0, "register-source jump with nonzero imm"
			}
		} else if ins.Src != 0 {
			return x, 0, "immediate-source jump with nonzero src"
		}
		return x, 0, target(int(ins.Off))

	case isa.ClassLD:
		return translateLD(p, i, hi, x)

	case isa.ClassLDX:
		if badReg(ins.Dst) || ins.Dst == 10 {
			return x, 0, fmt.Sprintf("invalid destination register r%d", ins.Dst)
		}
		if badReg(ins.Src) {
			return x, 0, fmt.Sprintf("invalid source register r%d", ins.Src)
		}
		if ins.Imm != 0 {
			return x, 0, "load with nonzero imm"
		}
		size := ins.Op & 0x18
		switch ins.Op & 0xe0 {
		case isa.ModeMEM:
			x.op = [4]uint8{opLdxW, opLdxH, opLdxB, opLdxDW}[size>>3]
			return x, 0, ""
		case isa.ModeMEMSX:
			if size == isa.SizeDW {
				return x, 0, "sign-extending load of 8 bytes"
			}
			x.op = [4]uint8{opLdxSW, opLdxSH, opLdxSB}[size>>3]
			return x, 0, ""
		}
		return x, 0, fmt.Sprintf("invalid load opcode %#02x", ins.Op)

	case isa.ClassST:
		if badReg(ins.Dst) {
			return x, 0, fmt.Sprintf("invalid base register r%d", ins.Dst)
		}
		if ins.Op&0xe0 != isa.ModeMEM || ins.Src != 0 {
			return x, 0, fmt.Sprintf("invalid store opcode %#02x", ins.Op)
		}
		x.op = [4]uint8{opStW, opStH, opStB, opStDW}[(ins.Op&0x18)>>3]
		return x, 0, ""

	case isa.ClassSTX:
		if badReg(ins.Dst) {
			return x, 0, fmt.Sprintf("invalid base register r%d", ins.Dst)
		}
		if badReg(ins.Src) {
			return x, 0, fmt.Sprintf("invalid source register r%d", ins.Src)
		}
		size := ins.Op & 0x18
		switch ins.Op & 0xe0 {
		case isa.ModeMEM:
			if ins.Imm != 0 {
				return x, 0, "store with nonzero imm"
			}
			x.op = [4]uint8{opStxW, opStxH, opStxB, opStxDW}[size>>3]
			return x, 0, ""
		case isa.ModeATOMIC:
			return translateAtomic(ins, x, size)
		}
		return x, 0, fmt.Sprintf("invalid store opcode %#02x", ins.Op)
	}
	panic("unreachable")
}

func translateAtomic(ins Insn, x xinsn, size uint8) (xinsn, int32, string) {
	si := [4]int{2, 1, 0, 3}[size>>3] // W H B DW -> 2 1 0 3 (log2 bytes)
	switch ins.Imm {
	case isa.AtomicLoadAcq:
		if ins.Dst == 10 {
			return x, 0, "load-acquire into r10"
		}
		x.op = [4]uint8{opLoadAcqB, opLoadAcqH, opLoadAcqW, opLoadAcqDW}[si]
		return x, 0, ""
	case isa.AtomicStoreRel:
		x.op = [4]uint8{opStoreRelB, opStoreRelH, opStoreRelW, opStoreRelDW}[si]
		return x, 0, ""
	}
	if size != isa.SizeW && size != isa.SizeDW {
		return x, 0, "atomic read-modify-write on 1 or 2 bytes"
	}
	if ins.Src == 10 && ins.Imm&isa.AtomicFetch != 0 {
		return x, 0, "atomic fetch into r10"
	}
	var op uint8
	switch ins.Imm {
	case isa.AluADD:
		op = opAtomicAdd32
	case isa.AluOR:
		op = opAtomicOr32
	case isa.AluAND:
		op = opAtomicAnd32
	case isa.AluXOR:
		op = opAtomicXor32
	case isa.AluADD | isa.AtomicFetch:
		op = opAtomicFetchAdd32
	case isa.AluOR | isa.AtomicFetch:
		op = opAtomicFetchOr32
	case isa.AluAND | isa.AtomicFetch:
		op = opAtomicFetchAnd32
	case isa.AluXOR | isa.AtomicFetch:
		op = opAtomicFetchXor32
	case isa.AtomicXchg:
		op = opXchg32
	case isa.AtomicCmpXchg:
		op = opCmpXchg32
	default:
		return x, 0, fmt.Sprintf("invalid atomic operation %#x", ins.Imm)
	}
	if size == isa.SizeDW {
		op += opAtomicAdd64 - opAtomicAdd32
	}
	x.op = op
	return x, 0, ""
}

func translateLD(p *Program, i int, hi []bool, x xinsn) (xinsn, int32, string) {
	ins := p.Insns[i]
	switch ins.Op {
	case isa.OpLdImm64:
	case isa.ClassLD | isa.ModeABS | isa.SizeB, isa.ClassLD | isa.ModeABS | isa.SizeH, isa.ClassLD | isa.ModeABS | isa.SizeW,
		isa.ClassLD | isa.ModeIND | isa.SizeB, isa.ClassLD | isa.ModeIND | isa.SizeH, isa.ClassLD | isa.ModeIND | isa.SizeW:
		if ins.Src > 10 && ins.Op&0xe0 == isa.ModeIND {
			return x, 0, fmt.Sprintf("invalid source register r%d", ins.Src)
		}
		k := [3]uint8{2, 1, 0}[(ins.Op&0x18)>>3] // W H B -> 2 1 0
		if ins.Op&0xe0 == isa.ModeABS {
			x.op = opLdAbsB + k
		} else {
			x.op = opLdIndB + k
		}
		return x, 0, ""
	default:
		return x, 0, fmt.Sprintf("invalid opcode %#02x", ins.Op)
	}
	if i+1 >= len(p.Insns) {
		return x, 0, "64-bit immediate load without its second half"
	}
	next := p.Insns[i+1]
	if next.Op != 0 || next.Dst != 0 || next.Src != 0 || next.Off != 0 {
		return x, 0, "64-bit immediate load with an invalid second half"
	}
	if ins.Dst > 10 || ins.Dst == 10 {
		return x, 0, fmt.Sprintf("invalid destination register r%d", ins.Dst)
	}
	if ins.Off != 0 {
		return x, 0, "64-bit immediate load with nonzero offset"
	}
	x.op = opLdImm64
	var v uint64
	switch ins.Src {
	case 0:
		v = uint64(uint32(ins.Imm)) | uint64(uint32(next.Imm))<<32
	case PseudoMapFD:
		if ins.Imm < 0 || int(ins.Imm) >= len(p.Maps) || next.Imm != 0 {
			return x, 0, fmt.Sprintf("map reference %d out of range (%d maps)", ins.Imm, len(p.Maps))
		}
		v = MapRefBase + uint64(ins.Imm)
	case PseudoMapValue:
		if ins.Imm < 0 || int(ins.Imm) >= len(p.Maps) {
			return x, 0, fmt.Sprintf("map reference %d out of range (%d maps)", ins.Imm, len(p.Maps))
		}
		m := p.Maps[ins.Imm]
		if m.ValueAddr == 0 || m.ValueSize == 0 {
			return x, 0, fmt.Sprintf("map %d has no direct value", ins.Imm)
		}
		if next.Imm < 0 || uint32(next.Imm) >= m.ValueSize {
			return x, 0, fmt.Sprintf("offset %d outside map %d's value of %d bytes", next.Imm, ins.Imm, m.ValueSize)
		}
		v = uint64(m.ValueAddr) + uint64(next.Imm)
	case PseudoFunc:
		t := i + 1 + int(ins.Imm)
		if t < 0 || t >= len(p.Insns) || hi[t] { // next.Imm is ignored: encoders differ
			return x, 0, fmt.Sprintf("function reference to %d is not an instruction", t)
		}
		v = FuncRefBase + uint64(t)
	default:
		return x, 0, fmt.Sprintf("64-bit immediate load of unsupported pseudo kind %d", ins.Src)
	}
	x.regs &= 15
	x.imm = int32(uint32(v))
	return x, int32(uint32(v >> 32)), ""
}
