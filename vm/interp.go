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
// The loop is written for speed: one switch over the prepared opcode
// (compiled to a jump table), registers in a local array indexed with a
// mask the compiler can prove in bounds, the stack bounds in locals, and
// no calls on the fast paths of ALU, jump, load and store instructions.
func (m *Machine) exec(c *code, pc int, r1, r2, r3, r4, r5 uint64, depth int) (uint64, error) {
	var r [16]uint64
	r[1], r[2], r[3], r[4], r[5] = r1, r2, r3, r4, r5
	base := depth
	r[10] = m.top - uint64(depth)*StackSize
	lo := r[10] - StackSize
	span := m.top - lo
	m.lo, m.span = lo, span
	insns := c.insns
	budget := m.budget

	for {
		x := insns[pc]
		if budget == 0 {
			m.budget = 0
			return 0, m.fault(pc, ErrBudget, "")
		}
		budget--
		pc++
		switch x.op {
		// ALU64
		case opAdd64K:
			r[x.dst&15] += uint64(int64(x.imm))
		case opAdd64X:
			r[x.dst&15] += r[x.src&15]
		case opSub64K:
			r[x.dst&15] -= uint64(int64(x.imm))
		case opSub64X:
			r[x.dst&15] -= r[x.src&15]
		case opMul64K:
			r[x.dst&15] *= uint64(int64(x.imm))
		case opMul64X:
			r[x.dst&15] *= r[x.src&15]
		case opDiv64K:
			r[x.dst&15] = div64(r[x.dst&15], uint64(int64(x.imm)))
		case opDiv64X:
			r[x.dst&15] = div64(r[x.dst&15], r[x.src&15])
		case opSDiv64K:
			r[x.dst&15] = sdiv64(r[x.dst&15], uint64(int64(x.imm)))
		case opSDiv64X:
			r[x.dst&15] = sdiv64(r[x.dst&15], r[x.src&15])
		case opMod64K:
			r[x.dst&15] = mod64(r[x.dst&15], uint64(int64(x.imm)))
		case opMod64X:
			r[x.dst&15] = mod64(r[x.dst&15], r[x.src&15])
		case opSMod64K:
			r[x.dst&15] = smod64(r[x.dst&15], uint64(int64(x.imm)))
		case opSMod64X:
			r[x.dst&15] = smod64(r[x.dst&15], r[x.src&15])
		case opOr64K:
			r[x.dst&15] |= uint64(int64(x.imm))
		case opOr64X:
			r[x.dst&15] |= r[x.src&15]
		case opAnd64K:
			r[x.dst&15] &= uint64(int64(x.imm))
		case opAnd64X:
			r[x.dst&15] &= r[x.src&15]
		case opLsh64K:
			r[x.dst&15] <<= uint64(x.imm) & 63
		case opLsh64X:
			r[x.dst&15] <<= r[x.src&15] & 63
		case opRsh64K:
			r[x.dst&15] >>= uint64(x.imm) & 63
		case opRsh64X:
			r[x.dst&15] >>= r[x.src&15] & 63
		case opArsh64K:
			r[x.dst&15] = uint64(int64(r[x.dst&15]) >> (uint64(x.imm) & 63))
		case opArsh64X:
			r[x.dst&15] = uint64(int64(r[x.dst&15]) >> (r[x.src&15] & 63))
		case opXor64K:
			r[x.dst&15] ^= uint64(int64(x.imm))
		case opXor64X:
			r[x.dst&15] ^= r[x.src&15]
		case opMov64K:
			r[x.dst&15] = uint64(int64(x.imm))
		case opMov64X:
			r[x.dst&15] = r[x.src&15]
		case opMovSX64B:
			r[x.dst&15] = uint64(int64(int8(r[x.src&15])))
		case opMovSX64H:
			r[x.dst&15] = uint64(int64(int16(r[x.src&15])))
		case opMovSX64W:
			r[x.dst&15] = uint64(int64(int32(r[x.src&15])))
		case opNeg64:
			r[x.dst&15] = -r[x.dst&15]

		// ALU32: operate on the low halves, zero-extend the result
		case opAdd32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) + uint32(x.imm))
		case opAdd32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) + uint32(r[x.src&15]))
		case opSub32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) - uint32(x.imm))
		case opSub32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) - uint32(r[x.src&15]))
		case opMul32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) * uint32(x.imm))
		case opMul32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) * uint32(r[x.src&15]))
		case opDiv32K:
			r[x.dst&15] = div32(uint32(r[x.dst&15]), uint32(x.imm))
		case opDiv32X:
			r[x.dst&15] = div32(uint32(r[x.dst&15]), uint32(r[x.src&15]))
		case opSDiv32K:
			r[x.dst&15] = sdiv32(uint32(r[x.dst&15]), uint32(x.imm))
		case opSDiv32X:
			r[x.dst&15] = sdiv32(uint32(r[x.dst&15]), uint32(r[x.src&15]))
		case opMod32K:
			r[x.dst&15] = mod32(uint32(r[x.dst&15]), uint32(x.imm))
		case opMod32X:
			r[x.dst&15] = mod32(uint32(r[x.dst&15]), uint32(r[x.src&15]))
		case opSMod32K:
			r[x.dst&15] = smod32(uint32(r[x.dst&15]), uint32(x.imm))
		case opSMod32X:
			r[x.dst&15] = smod32(uint32(r[x.dst&15]), uint32(r[x.src&15]))
		case opOr32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) | uint32(x.imm))
		case opOr32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) | uint32(r[x.src&15]))
		case opAnd32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) & uint32(x.imm))
		case opAnd32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) & uint32(r[x.src&15]))
		case opLsh32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) << (uint32(x.imm) & 31))
		case opLsh32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) << (uint32(r[x.src&15]) & 31))
		case opRsh32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) >> (uint32(x.imm) & 31))
		case opRsh32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) >> (uint32(r[x.src&15]) & 31))
		case opArsh32K:
			r[x.dst&15] = uint64(uint32(int32(r[x.dst&15]) >> (uint32(x.imm) & 31)))
		case opArsh32X:
			r[x.dst&15] = uint64(uint32(int32(r[x.dst&15]) >> (uint32(r[x.src&15]) & 31)))
		case opXor32K:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) ^ uint32(x.imm))
		case opXor32X:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]) ^ uint32(r[x.src&15]))
		case opMov32K:
			r[x.dst&15] = uint64(uint32(x.imm))
		case opMov32X:
			r[x.dst&15] = uint64(uint32(r[x.src&15]))
		case opMovSX32B:
			r[x.dst&15] = uint64(uint32(int32(int8(r[x.src&15]))))
		case opMovSX32H:
			r[x.dst&15] = uint64(uint32(int32(int16(r[x.src&15]))))
		case opNeg32:
			r[x.dst&15] = uint64(-uint32(r[x.dst&15]))

		// byte order
		case opZext16:
			r[x.dst&15] = uint64(uint16(r[x.dst&15]))
		case opZext32:
			r[x.dst&15] = uint64(uint32(r[x.dst&15]))
		case opNop:
		case opSwap16:
			r[x.dst&15] = swap16(r[x.dst&15])
		case opSwap32:
			r[x.dst&15] = swap32(r[x.dst&15])
		case opSwap64:
			r[x.dst&15] = swap64(r[x.dst&15])

		// jumps
		case opJA:
			pc += int(x.off)
		case opJA32:
			pc += int(x.imm)
		case opJEqK:
			if r[x.dst&15] == uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJEqX:
			if r[x.dst&15] == r[x.src&15] {
				pc += int(x.off)
			}
		case opJGtK:
			if r[x.dst&15] > uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJGtX:
			if r[x.dst&15] > r[x.src&15] {
				pc += int(x.off)
			}
		case opJGeK:
			if r[x.dst&15] >= uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJGeX:
			if r[x.dst&15] >= r[x.src&15] {
				pc += int(x.off)
			}
		case opJSetK:
			if r[x.dst&15]&uint64(int64(x.imm)) != 0 {
				pc += int(x.off)
			}
		case opJSetX:
			if r[x.dst&15]&r[x.src&15] != 0 {
				pc += int(x.off)
			}
		case opJNeK:
			if r[x.dst&15] != uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJNeX:
			if r[x.dst&15] != r[x.src&15] {
				pc += int(x.off)
			}
		case opJSGtK:
			if int64(r[x.dst&15]) > int64(x.imm) {
				pc += int(x.off)
			}
		case opJSGtX:
			if int64(r[x.dst&15]) > int64(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJSGeK:
			if int64(r[x.dst&15]) >= int64(x.imm) {
				pc += int(x.off)
			}
		case opJSGeX:
			if int64(r[x.dst&15]) >= int64(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJLtK:
			if r[x.dst&15] < uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJLtX:
			if r[x.dst&15] < r[x.src&15] {
				pc += int(x.off)
			}
		case opJLeK:
			if r[x.dst&15] <= uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJLeX:
			if r[x.dst&15] <= r[x.src&15] {
				pc += int(x.off)
			}
		case opJSLtK:
			if int64(r[x.dst&15]) < int64(x.imm) {
				pc += int(x.off)
			}
		case opJSLtX:
			if int64(r[x.dst&15]) < int64(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJSLeK:
			if int64(r[x.dst&15]) <= int64(x.imm) {
				pc += int(x.off)
			}
		case opJSLeX:
			if int64(r[x.dst&15]) <= int64(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJEq32K:
			if uint32(r[x.dst&15]) == uint32(x.imm) {
				pc += int(x.off)
			}
		case opJEq32X:
			if uint32(r[x.dst&15]) == uint32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJGt32K:
			if uint32(r[x.dst&15]) > uint32(x.imm) {
				pc += int(x.off)
			}
		case opJGt32X:
			if uint32(r[x.dst&15]) > uint32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJGe32K:
			if uint32(r[x.dst&15]) >= uint32(x.imm) {
				pc += int(x.off)
			}
		case opJGe32X:
			if uint32(r[x.dst&15]) >= uint32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJSet32K:
			if uint32(r[x.dst&15])&uint32(x.imm) != 0 {
				pc += int(x.off)
			}
		case opJSet32X:
			if uint32(r[x.dst&15])&uint32(r[x.src&15]) != 0 {
				pc += int(x.off)
			}
		case opJNe32K:
			if uint32(r[x.dst&15]) != uint32(x.imm) {
				pc += int(x.off)
			}
		case opJNe32X:
			if uint32(r[x.dst&15]) != uint32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJSGt32K:
			if int32(r[x.dst&15]) > x.imm {
				pc += int(x.off)
			}
		case opJSGt32X:
			if int32(r[x.dst&15]) > int32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJSGe32K:
			if int32(r[x.dst&15]) >= x.imm {
				pc += int(x.off)
			}
		case opJSGe32X:
			if int32(r[x.dst&15]) >= int32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJLt32K:
			if uint32(r[x.dst&15]) < uint32(x.imm) {
				pc += int(x.off)
			}
		case opJLt32X:
			if uint32(r[x.dst&15]) < uint32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJLe32K:
			if uint32(r[x.dst&15]) <= uint32(x.imm) {
				pc += int(x.off)
			}
		case opJLe32X:
			if uint32(r[x.dst&15]) <= uint32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJSLt32K:
			if int32(r[x.dst&15]) < x.imm {
				pc += int(x.off)
			}
		case opJSLt32X:
			if int32(r[x.dst&15]) < int32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opJSLe32K:
			if int32(r[x.dst&15]) <= x.imm {
				pc += int(x.off)
			}
		case opJSLe32X:
			if int32(r[x.dst&15]) <= int32(r[x.src&15]) {
				pc += int(x.off)
			}
		case opMayGoto:
			if m.mayGoto == 0 {
				pc += int(x.off)
			} else {
				m.mayGoto--
			}

		// 64-bit immediates (pseudo forms were resolved by prepare)
		case opLdImm64:
			r[x.dst&15] = uint64(uint32(x.imm)) | uint64(uint32(insns[pc].imm))<<32
			pc++

		// loads
		case opLdxB:
			a := r[x.src&15] + uint64(int64(x.off))
			if a-lo > span-1 && !m.inRange(a, 1, false) {
				return 0, m.memFault(pc-1, a, 1, false)
			}
			r[x.dst&15] = uint64(*(*uint8)(ptr(a)))
		case opLdxH:
			a := r[x.src&15] + uint64(int64(x.off))
			if a-lo > span-2 && !m.inRange(a, 2, false) {
				return 0, m.memFault(pc-1, a, 2, false)
			}
			r[x.dst&15] = uint64(*(*uint16)(ptr(a)))
		case opLdxW:
			a := r[x.src&15] + uint64(int64(x.off))
			if a-lo > span-4 && !m.inRange(a, 4, false) {
				return 0, m.memFault(pc-1, a, 4, false)
			}
			r[x.dst&15] = uint64(*(*uint32)(ptr(a)))
		case opLdxDW:
			a := r[x.src&15] + uint64(int64(x.off))
			if a-lo > span-8 && !m.inRange(a, 8, false) {
				return 0, m.memFault(pc-1, a, 8, false)
			}
			r[x.dst&15] = *(*uint64)(ptr(a))
		case opLdxSB:
			a := r[x.src&15] + uint64(int64(x.off))
			if a-lo > span-1 && !m.inRange(a, 1, false) {
				return 0, m.memFault(pc-1, a, 1, false)
			}
			r[x.dst&15] = uint64(int64(*(*int8)(ptr(a))))
		case opLdxSH:
			a := r[x.src&15] + uint64(int64(x.off))
			if a-lo > span-2 && !m.inRange(a, 2, false) {
				return 0, m.memFault(pc-1, a, 2, false)
			}
			r[x.dst&15] = uint64(int64(*(*int16)(ptr(a))))
		case opLdxSW:
			a := r[x.src&15] + uint64(int64(x.off))
			if a-lo > span-4 && !m.inRange(a, 4, false) {
				return 0, m.memFault(pc-1, a, 4, false)
			}
			r[x.dst&15] = uint64(int64(*(*int32)(ptr(a))))

		// stores of an immediate
		case opStB:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-1 && !m.inRange(a, 1, true) {
				return 0, m.memFault(pc-1, a, 1, true)
			}
			*(*uint8)(ptr(a)) = uint8(x.imm)
		case opStH:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-2 && !m.inRange(a, 2, true) {
				return 0, m.memFault(pc-1, a, 2, true)
			}
			*(*uint16)(ptr(a)) = uint16(x.imm)
		case opStW:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-4 && !m.inRange(a, 4, true) {
				return 0, m.memFault(pc-1, a, 4, true)
			}
			*(*uint32)(ptr(a)) = uint32(x.imm)
		case opStDW:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-8 && !m.inRange(a, 8, true) {
				return 0, m.memFault(pc-1, a, 8, true)
			}
			*(*uint64)(ptr(a)) = uint64(int64(x.imm))

		// stores of a register
		case opStxB:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-1 && !m.inRange(a, 1, true) {
				return 0, m.memFault(pc-1, a, 1, true)
			}
			*(*uint8)(ptr(a)) = uint8(r[x.src&15])
		case opStxH:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-2 && !m.inRange(a, 2, true) {
				return 0, m.memFault(pc-1, a, 2, true)
			}
			*(*uint16)(ptr(a)) = uint16(r[x.src&15])
		case opStxW:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-4 && !m.inRange(a, 4, true) {
				return 0, m.memFault(pc-1, a, 4, true)
			}
			*(*uint32)(ptr(a)) = uint32(r[x.src&15])
		case opStxDW:
			a := r[x.dst&15] + uint64(int64(x.off))
			if a-lo > span-8 && !m.inRange(a, 8, true) {
				return 0, m.memFault(pc-1, a, 8, true)
			}
			*(*uint64)(ptr(a)) = r[x.src&15]

		// atomics: see atomic.go
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
				m.budget = budget
				return 0, nil // out of bounds ends the program with R0 = 0, as in the kernel
			}
			r[0] = v

		// calls
		case opCallHelper:
			id := x.imm
			if uint32(id) >= uint32(len(m.Helpers)) || m.Helpers[id] == nil {
				return 0, m.fault(pc-1, ErrUnknownHelper, fmt.Sprintf("helper %d", id))
			}
			m.budget, m.pc, m.depth = budget, pc-1, depth
			v, err := m.Helpers[id](m, r[1], r[2], r[3], r[4], r[5])
			if err != nil {
				return 0, m.helperFault(pc-1, "helper", id, err)
			}
			budget = m.budget
			m.lo, m.span = lo, span
			r[0] = v
			if m.tail != nil {
				p := m.tail
				m.tail = nil
				c = p.prepared()
				m.code = c
				insns = c.insns
				pc = 0
				r = [16]uint64{1: r[1], 10: r[10]}
			}
		case opCallKfunc:
			f := m.Kfuncs[x.imm]
			if f == nil {
				return 0, m.fault(pc-1, ErrUnknownHelper, fmt.Sprintf("kfunc %d", x.imm))
			}
			m.budget, m.pc, m.depth = budget, pc-1, depth
			v, err := f(m, r[1], r[2], r[3], r[4], r[5])
			if err != nil {
				return 0, m.helperFault(pc-1, "kfunc", x.imm, err)
			}
			budget = m.budget
			m.lo, m.span = lo, span
			r[0] = v
		case opCallLocal:
			if depth+1 >= MaxCallDepth {
				return 0, m.fault(pc-1, ErrCallDepth, fmt.Sprintf("call to insn %d at depth %d (max %d frames)", pc+int(x.imm), depth+1, MaxCallDepth))
			}
			f := &m.frames[depth]
			f.ret = pc
			f.saved = [4]uint64{r[6], r[7], r[8], r[9]}
			f.fp = r[10]
			depth++
			r[10] -= StackSize
			lo -= StackSize
			span += StackSize
			m.lo, m.span = lo, span
			pc += int(x.imm)
		case opExit:
			if depth == base {
				m.budget = budget
				return r[0], nil
			}
			depth--
			f := &m.frames[depth]
			pc = f.ret
			r[6], r[7], r[8], r[9] = f.saved[0], f.saved[1], f.saved[2], f.saved[3]
			r[10] = f.fp
			lo += StackSize
			span -= StackSize
			m.lo, m.span = lo, span

		case opLdImm64Hi:
			return 0, m.fault(pc-1, ErrInvalid, "jump into the middle of a 64-bit immediate load")
		case opFellOff:
			return 0, m.fault(pc-1, ErrFellOff, "")
		case opInvalid:
			return 0, m.fault(pc-1, ErrInvalid, c.reasons[x.imm])
		default:
			return 0, m.fault(pc-1, ErrInvalid, fmt.Sprintf("internal opcode %d", x.op))
		}
	}
}

// ldPacket implements LD_ABS / LD_IND over the ctx buffer as packet data:
// R0 = ntoh(*(size *)(ctx + imm [+ src])). ok is false out of bounds.
func (m *Machine) ldPacket(x xinsn, r *[16]uint64) (uint64, bool) {
	off := int64(x.imm)
	var size int64
	switch x.op {
	case opLdIndB, opLdIndH, opLdIndW:
		off += int64(int32(r[x.src&15]))
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
