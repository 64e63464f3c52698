package verifier

import (
	"fmt"

	"github.com/userbpf/userbpf/internal/isa"
	"github.com/userbpf/userbpf/vm"
)

// alu interprets an ALU or ALU64 instruction: constants are folded,
// pointers keep their kind under addition and subtraction of a scalar.
func (v *verifier) alu(pc int, ins vm.Insn, st *state) error {
	is64 := ins.Op&7 == isa.ClassALU64
	op := ins.Op & 0xf0
	useX := ins.Op&0x08 != 0
	var src reg
	if op != isa.AluNEG && op != isa.AluEND {
		if useX {
			var err error
			if src, err = v.readReg(pc, st, ins.Src); err != nil {
				return err
			}
		} else {
			src = constant(int64(ins.Imm))
			if !is64 {
				src = constant(int64(uint32(ins.Imm)))
			}
		}
	}
	if op == isa.AluMOV {
		switch {
		case ins.Off != 0: // movsx
			if src.isConst() {
				return v.setReg(pc, st, ins.Dst, constant(truncate(signExtend(src.off, int(ins.Off)), is64)))
			}
			return v.setReg(pc, st, ins.Dst, width(scalar(), is64))
		case is64:
			return v.setReg(pc, st, ins.Dst, src)
		case src.isConst():
			return v.setReg(pc, st, ins.Dst, constant(int64(uint32(src.off))))
		default:
			if b, ok := src.bound(); ok && b <= 0xffffffff {
				return v.setReg(pc, st, ins.Dst, atMost(b))
			}
			return v.setReg(pc, st, ins.Dst, atMost(0xffffffff))
		}
	}
	dst, err := v.readReg(pc, st, ins.Dst)
	if err != nil {
		return err
	}
	if op == isa.AluNEG || op == isa.AluEND {
		if dst.isConst() && op == isa.AluNEG {
			return v.setReg(pc, st, ins.Dst, constant(truncate(-dst.off, is64)))
		}
		if op == isa.AluEND && ins.Imm < 64 && ins.Imm > 0 {
			return v.setReg(pc, st, ins.Dst, atMost(1<<uint(ins.Imm)-1))
		}
		return v.setReg(pc, st, ins.Dst, width(scalar(), is64))
	}
	// pkt_end is compared with, or subtracted from (data_end - data); it
	// is never moved.
	if (dst.k == kPktEnd && src.k == kScalar) || (src.k == kPktEnd && dst.k == kScalar && op != isa.AluMOV) {
		return v.errAt(pc, ErrMemAccess, fmt.Sprintf("R%d is %s, R%d %s: arithmetic on pkt_end, the end of the packet (compare pointers with it; data_end - data is a number)", ins.Dst, dst.typeName(), ins.Src, src.typeName()))
	}
	if is64 && (op == isa.AluADD || op == isa.AluSUB) && (dst.k.isPtr() || src.k.isPtr()) {
		r, err := v.ptrArith(pc, ins, op, dst, src)
		if err != nil {
			return err
		}
		return v.setReg(pc, st, ins.Dst, r)
	}
	if dst.k.isPtr() && dst.null {
		return v.errAt(pc, ErrNullCheck, fmt.Sprintf("R%d is %s: arithmetic on a pointer that may be NULL; check it for NULL first", ins.Dst, dst.typeName()))
	}
	if dst.isConst() && src.isConst() && ins.Off == 0 {
		if r, ok := fold(op, dst.off, src.off, is64); ok {
			return v.setReg(pc, st, ins.Dst, constant(r))
		}
	}
	return v.setReg(pc, st, ins.Dst, width(aluBound(op, dst, src, ins.Off != 0), is64))
}

// width bounds a 32-bit result (zero-extended) by 2^32-1.
func width(r reg, is64 bool) reg {
	if is64 || r.k != kScalar || r.known {
		return r
	}
	if b, ok := r.bound(); ok && b <= 0xffffffff {
		return r
	}
	return atMost(0xffffffff)
}

// aluBound is an upper bound of dst op src for unknown scalars, where one
// follows from the operands' bounds (masks, shifts, sums…).
func aluBound(op uint8, dst, src reg, signed bool) reg {
	if dst.k != kScalar || src.k != kScalar || signed {
		return scalar()
	}
	db, dok := dst.bound()
	sb, sok := src.bound()
	switch op {
	case isa.AluAND:
		switch {
		case dok && sok:
			return atMost(min(db, sb))
		case dok:
			return atMost(db)
		case sok:
			return atMost(sb)
		}
	case isa.AluRSH:
		if src.isConst() {
			sh := uint64(src.off) & 63
			if dok {
				return atMost(db >> sh)
			}
			if sh > 0 {
				return atMost(^uint64(0) >> sh)
			}
		}
	case isa.AluLSH:
		if src.isConst() && dok {
			sh := uint64(src.off) & 63
			if (db<<sh)>>sh == db {
				return atMost(db << sh)
			}
		}
	case isa.AluMOD:
		if src.isConst() && src.off > 0 {
			if dok {
				return atMost(min(db, uint64(src.off)-1))
			}
			return atMost(uint64(src.off) - 1)
		}
	case isa.AluDIV:
		if dok {
			return atMost(db)
		}
	case isa.AluADD:
		if dok && sok && db+sb >= db {
			return atMost(db + sb)
		}
	case isa.AluMUL:
		if dok && sok && (db == 0 || (db*sb)/db == sb) {
			return atMost(db * sb)
		}
	case isa.AluOR, isa.AluXOR:
		if dok && sok {
			m := max(db, sb)
			n := uint64(1)
			for n <= m && n != 0 {
				n <<= 1
			}
			if n != 0 {
				return atMost(n - 1)
			}
		}
	}
	return scalar()
}

// ptrArith is pointer ± scalar, scalar + pointer and pointer - pointer.
func (v *verifier) ptrArith(pc int, ins vm.Insn, op uint8, dst, src reg) (reg, error) {
	if dst.k.isPtr() && src.k.isPtr() {
		if op == isa.AluSUB && dst.k == src.k {
			return scalar(), nil
		}
		return scalar(), nil
	}
	p, n, reg := dst, src, ins.Dst
	if !dst.k.isPtr() {
		if op == isa.AluSUB {
			return scalar(), nil // scalar - pointer: a number
		}
		p, n, reg = src, dst, ins.Src
	}
	if p.null {
		return p, v.errAt(pc, ErrNullCheck, fmt.Sprintf("R%d is %s: pointer arithmetic before the NULL check; check it for NULL first", reg, p.typeName()))
	}
	if p.k == kGone {
		return p, v.goneErr(pc, reg, p)
	}
	if n.k != kScalar {
		return scalar(), nil
	}
	if n.isConst() {
		d := n.off
		if op == isa.AluSUB {
			d = -d
		}
		p.off += d
		return p, nil
	}
	b, ok := n.bound()
	switch {
	case op == isa.AluSUB || !ok:
		p.bounded, p.umax = false, 0
	case !p.varOff:
		p.bounded, p.umax = true, b
	case p.bounded && p.umax+b >= p.umax:
		p.umax += b
	default:
		p.bounded, p.umax = false, 0
	}
	p.varOff = true
	return p, nil
}

// fold computes a constant ALU result with the ISA's semantics (division
// by zero gives 0, modulo by zero leaves the dividend).
func fold(op uint8, a, b int64, is64 bool) (int64, bool) {
	if !is64 {
		a, b = int64(uint32(a)), int64(uint32(b))
	}
	ua, ub := uint64(a), uint64(b)
	var r uint64
	switch op {
	case isa.AluADD:
		r = ua + ub
	case isa.AluSUB:
		r = ua - ub
	case isa.AluMUL:
		r = ua * ub
	case isa.AluDIV:
		if ub == 0 {
			r = 0
		} else {
			r = ua / ub
		}
	case isa.AluMOD:
		if ub == 0 {
			r = ua
		} else {
			r = ua % ub
		}
	case isa.AluOR:
		r = ua | ub
	case isa.AluAND:
		r = ua & ub
	case isa.AluXOR:
		r = ua ^ ub
	case isa.AluLSH:
		if is64 {
			r = ua << (ub & 63)
		} else {
			r = uint64(uint32(ua) << (ub & 31))
		}
	case isa.AluRSH:
		if is64 {
			r = ua >> (ub & 63)
		} else {
			r = uint64(uint32(ua) >> (ub & 31))
		}
	case isa.AluARSH:
		if is64 {
			r = uint64(a >> (ub & 63))
		} else {
			r = uint64(uint32(int32(uint32(ua)) >> (ub & 31)))
		}
	default:
		return 0, false
	}
	return truncate(int64(r), is64), true
}

func truncate(x int64, is64 bool) int64 {
	if is64 {
		return x
	}
	return int64(uint32(x))
}

func signExtend(x int64, bits int) int64 {
	switch bits {
	case 8:
		return int64(int8(x))
	case 16:
		return int64(int16(x))
	case 32:
		return int64(int32(x))
	}
	return x
}

// ldImm64 is a 64-bit immediate load: a constant (maybe a bpf_obj_new
// type id), a map, a global-data value or a callback.
func (v *verifier) ldImm64(ctx, pc int, ins vm.Insn, st *state) error {
	hi := v.p.Insns[pc+1].Imm
	switch ins.Src {
	case 0:
		r := constant(int64(uint64(uint32(ins.Imm)) | uint64(uint32(hi))<<32))
		r.obj = v.p.ObjTypes[pc]
		return v.setReg(pc, st, ins.Dst, r)
	case vm.PseudoMapFD, vm.PseudoMapValue:
		if ins.Imm < 0 || int(ins.Imm) >= len(v.p.Maps) || v.p.Maps[ins.Imm] == nil {
			return v.errAt(pc, ErrInvalidInsn, fmt.Sprintf("map reference %d out of range (%d maps)", ins.Imm, len(v.p.Maps)))
		}
		m := v.p.Maps[ins.Imm]
		if ins.Src == vm.PseudoMapFD {
			return v.setReg(pc, st, ins.Dst, reg{k: kMapPtr, m: m})
		}
		return v.setReg(pc, st, ins.Dst, reg{k: kMapValue, m: m, off: int64(hi), id: globalID})
	case vm.PseudoFunc:
		return v.setReg(pc, st, ins.Dst, reg{k: kFunc, off: int64(pc + 1 + int(ins.Imm))})
	}
	return v.errAt(pc, ErrInvalidInsn, fmt.Sprintf("64-bit immediate load of unsupported kind %d", ins.Src))
}

// globalID is the instance identity of a global-data value: there is one
// per map, so the map names it.
const globalID = ^uint32(0)
