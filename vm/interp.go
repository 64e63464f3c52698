package vm

import (
	"encoding/binary"
	"fmt"
)

// exec runs c from instruction pc in a new frame at call depth depth with
// the given arguments, until the EXIT that leaves that frame. Run enters
// it at depth 0; CallFunc (bpf_loop and other callbacks) re-enters it one
// frame deeper. bpf-to-bpf calls stay inside the loop.
//
// fast executes the common instructions; exec executes, one at a time,
// those fast hands back (see fast.go), with the full memory checks.
func (m *Machine) exec(c *code, pc int, r1, r2, r3, r4, r5 uint64, depth int) (uint64, error) {
	var r [16]uint64
	r[1], r[2], r[3], r[4], r[5] = r1, r2, r3, r4, r5
	base := depth
	r[10] = m.top - uint64(depth)*StackSize
	m.lo = r[10] - StackSize
	m.span = m.top - m.lo
	insns := c.insns

	for {
		pc, m.budget = m.fast(&r, insns, pc, m.budget)
		if m.budget == 0 {
			return 0, m.fault(pc, ErrBudget, "")
		}
		m.budget--
		x := insns[pc]
		pc++
		switch x.op { // what fast left of an inlined call is the helper's
		case opCallArrayLookup:
			x = xinsn{op: opCallHelper, imm: FnMapLookupElem}
		case opCallSpinLock:
			x = xinsn{op: opCallHelper, imm: FnSpinLock}
		case opCallSpinUnlock:
			x = xinsn{op: opCallHelper, imm: FnSpinUnlock}
		}
		if x.op == opCallHelper {
			// Helper calls are what fast hands back most: a predictable
			// branch here spares them the switch's indirect jump.
			id := x.imm
			if uint32(id) >= uint32(len(m.Helpers)) || m.Helpers[id] == nil {
				return 0, m.fault(pc-1, ErrUnknownHelper, fmt.Sprintf("helper %d", id))
			}
			m.pc, m.depth = pc-1, depth
			lo, span := m.lo, m.span
			v, err := m.Helpers[id](m, r[1], r[2], r[3], r[4], r[5])
			if err != nil {
				return 0, m.helperFault(pc-1, "helper", id, err)
			}
			m.lo, m.span = lo, span
			r[0] = v
			if m.tail != nil {
				p := m.tail
				m.tail = nil
				m.hot = memRange{}
				c = p.prepared()
				m.code = c
				insns = c.insns
				pc = 0
				r = [16]uint64{1: r[1], 10: r[10]}
			}
			continue
		}
		d, s := x.regs&15, x.regs>>4
		switch x.op {
		case opLdxB, opLdxH, opLdxW, opLdxDW, opLdxSB, opLdxSH, opLdxSW:
			n := loadSize[x.op-opLdxB]
			a := r[s] + uint64(int64(x.off))
			if !m.CanAccess(a, n, false) {
				return 0, m.memFault(pc-1, a, n, false)
			}
			r[d] = load(x.op, a)
		case opStB, opStH, opStW, opStDW, opStxB, opStxH, opStxW, opStxDW:
			n := storeSize[x.op-opStB]
			a := r[d] + uint64(int64(x.off))
			if !m.CanAccess(a, n, true) {
				return 0, m.memFault(pc-1, a, n, true)
			}
			v := uint64(int64(x.imm))
			if x.op >= opStxB {
				v = r[s]
			}
			store(n, a, v)

		case opAtomicAdd32, opAtomicOr32, opAtomicAnd32, opAtomicXor32,
			opAtomicFetchAdd32, opAtomicFetchOr32, opAtomicFetchAnd32, opAtomicFetchXor32,
			opXchg32, opCmpXchg32,
			opAtomicAdd64, opAtomicOr64, opAtomicAnd64, opAtomicXor64,
			opAtomicFetchAdd64, opAtomicFetchOr64, opAtomicFetchAnd64, opAtomicFetchXor64,
			opXchg64, opCmpXchg64,
			opLoadAcqB, opLoadAcqH, opLoadAcqW, opLoadAcqDW,
			opStoreRelB, opStoreRelH, opStoreRelW, opStoreRelDW:
			if err := m.atomic(x, pc-1, &r); err != nil {
				return 0, err
			}

		// legacy packet loads from ctx (RFC 9669 §5.5)
		case opLdAbsB, opLdAbsH, opLdAbsW, opLdIndB, opLdIndH, opLdIndW:
			v, ok := m.ldPacket(x, &r)
			if !ok {
				return 0, nil // out of bounds ends the program with R0 = 0, as in the kernel
			}
			r[0] = v

		case opMayGoto:
			if m.mayGoto == 0 {
				pc += int(x.off)
			} else {
				m.mayGoto--
			}

		// calls (helper calls are handled above)
		case opCallKfunc:
			f := m.Kfuncs[x.imm]
			if f == nil {
				return 0, m.fault(pc-1, ErrUnknownHelper, fmt.Sprintf("kfunc %d", x.imm))
			}
			m.pc, m.depth = pc-1, depth
			lo, span := m.lo, m.span
			v, err := f(m, r[1], r[2], r[3], r[4], r[5])
			if err != nil {
				return 0, m.helperFault(pc-1, "kfunc", x.imm, err)
			}
			m.lo, m.span = lo, span
			r[0] = v
		case opCallLocal:
			if depth+1 >= MaxCallDepth {
				return 0, m.fault(pc-1, ErrCallDepth, fmt.Sprintf("call to insn %d at depth %d (max %d frames)", pc+int(x.imm), depth+1, MaxCallDepth))
			}
			f := &m.frames[depth]
			f.ret = pc
			f.code = c
			f.saved = [4]uint64{r[6], r[7], r[8], r[9]}
			f.fp = r[10]
			depth++
			r[10] -= StackSize
			m.lo -= StackSize
			m.span += StackSize
			pc += int(x.imm)
		case opExit:
			if depth == base {
				return r[0], nil
			}
			depth--
			f := &m.frames[depth]
			pc = f.ret
			if f.code != c { // the subprogram tail-called another program
				c = f.code
				m.code = c
				insns = c.insns
				m.hot = memRange{} // the callee's ranges (its globals) are not the caller's
			}
			r[6], r[7], r[8], r[9] = f.saved[0], f.saved[1], f.saved[2], f.saved[3]
			r[10] = f.fp
			m.lo += StackSize
			m.span -= StackSize

		case opMovAdd64K, opMovAnd64K, opMovOr64K, opMovXor64K, opMovLsh64K, opMovRsh64K, opMovArsh64K, opMovMul64K:
			r[d] = r[s] // the budget has room for the move only: the next instruction runs on its own
		case opMov32Add32K:
			r[d] = uint64(uint32(r[s]))
		case opLdImm64Hi:
			return 0, m.fault(pc-1, ErrInvalid, "jump into the middle of a 64-bit immediate load")
		case opFellOff:
			return 0, m.fault(pc-1, ErrFellOff, "")
		case opInvalid:
			return 0, m.fault(pc-1, ErrInvalid, c.reasons[x.imm])
		default:
			return 0, m.fault(pc-1, ErrInvalid, fmt.Sprintf("internal opcode %d not handled", x.op))
		}
	}
}

var (
	loadSize  = [...]uint64{opLdxB - opLdxB: 1, opLdxH - opLdxB: 2, opLdxW - opLdxB: 4, opLdxDW - opLdxB: 8, opLdxSB - opLdxB: 1, opLdxSH - opLdxB: 2, opLdxSW - opLdxB: 4}
	storeSize = [...]uint64{opStB - opStB: 1, opStH - opStB: 2, opStW - opStB: 4, opStDW - opStB: 8, opStxB - opStB: 1, opStxH - opStB: 2, opStxW - opStB: 4, opStxDW - opStB: 8}
)

// load performs a checked load of any LDX kind.
func load(op uint8, a uint64) uint64 {
	p := ptr(a)
	switch op {
	case opLdxB:
		return uint64(*(*uint8)(p))
	case opLdxH:
		return uint64(*(*uint16)(p))
	case opLdxW:
		return uint64(*(*uint32)(p))
	case opLdxDW:
		return *(*uint64)(p)
	case opLdxSB:
		return uint64(int64(*(*int8)(p)))
	case opLdxSH:
		return uint64(int64(*(*int16)(p)))
	}
	return uint64(int64(*(*int32)(p)))
}

// store performs a checked store of n bytes.
func store(n, a, v uint64) {
	p := ptr(a)
	switch n {
	case 1:
		*(*uint8)(p) = uint8(v)
	case 2:
		*(*uint16)(p) = uint16(v)
	case 4:
		*(*uint32)(p) = uint32(v)
	default:
		*(*uint64)(p) = v
	}
}

// ldPacket implements LD_ABS / LD_IND over the ctx buffer as packet data:
// R0 = ntoh(*(size *)(ctx + imm [+ src])). ok is false out of bounds.
func (m *Machine) ldPacket(x xinsn, r *[16]uint64) (uint64, bool) {
	off := int64(x.imm)
	var size int64
	switch x.op {
	case opLdIndB, opLdIndH, opLdIndW:
		off += int64(int32(r[x.regs>>4]))
	}
	switch x.op {
	case opLdAbsB, opLdIndB:
		size = 1
	case opLdAbsH, opLdIndH:
		size = 2
	default:
		size = 4
	}
	if off < 0 || off+size > int64(len(m.ctx)) {
		return 0, false
	}
	b := m.ctx[off : off+size]
	switch size {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), true
	}
	return uint64(binary.BigEndian.Uint32(b)), true
}
