package vm

import "unsafe"

// fast runs instructions from pc until one it leaves to exec (calls, exit,
// atomics, faults, accesses outside the stack and ctx, ...) or the budget
// runs out, and returns that instruction's index, unexecuted, and the
// budget left. It executes ALU and jump instructions, 64-bit immediates,
// and loads and stores that hit the stack frames or ctx.
//
// The function contains no calls: a call anywhere in the loop, even on a
// cold path, makes the compiler spill the loop's live values on every
// dispatch. Everything that needs a call returns to exec instead. The
// switch compiles to a jump table; registers are indexed with masks the
// compiler proves in bounds.
func (m *Machine) fast(r *[16]uint64, insns []xinsn, pc int, budget uint64) (int, uint64) {
	// prepare proved every jump target in range and ended the code with
	// opFellOff (which fast never executes), so pc stays inside insns:
	// the loads below need no bounds check.
	base := unsafe.Pointer(unsafe.SliceData(insns))
	for budget != 0 {
		// One 8-byte load, fields by shifts (little-endian layout of xinsn
		// on every host: see word).
		w := (*xinsn)(unsafe.Add(base, uintptr(pc)*8)).word()
		x := xinsn{op: uint8(w), off: int16(w >> 16), imm: int32(w >> 32)}
		d, s := uint8(w>>8)&15, uint8(w>>12)&15
		switch x.op {
		// ALU64
		case opAdd64K:
			r[d] += uint64(int64(x.imm))
		case opAdd64X:
			r[d] += r[s]
		case opSub64K:
			r[d] -= uint64(int64(x.imm))
		case opSub64X:
			r[d] -= r[s]
		case opMul64K:
			r[d] *= uint64(int64(x.imm))
		case opMul64X:
			r[d] *= r[s]
		case opDiv64K:
			r[d] = div64(r[d], uint64(int64(x.imm)))
		case opDiv64X:
			r[d] = div64(r[d], r[s])
		case opSDiv64K:
			r[d] = sdiv64(r[d], uint64(int64(x.imm)))
		case opSDiv64X:
			r[d] = sdiv64(r[d], r[s])
		case opMod64K:
			r[d] = mod64(r[d], uint64(int64(x.imm)))
		case opMod64X:
			r[d] = mod64(r[d], r[s])
		case opSMod64K:
			r[d] = smod64(r[d], uint64(int64(x.imm)))
		case opSMod64X:
			r[d] = smod64(r[d], r[s])
		case opOr64K:
			r[d] |= uint64(int64(x.imm))
		case opOr64X:
			r[d] |= r[s]
		case opAnd64K:
			r[d] &= uint64(int64(x.imm))
		case opAnd64X:
			r[d] &= r[s]
		case opLsh64K:
			r[d] <<= uint64(x.imm) & 63
		case opLsh64X:
			r[d] <<= r[s] & 63
		case opRsh64K:
			r[d] >>= uint64(x.imm) & 63
		case opRsh64X:
			r[d] >>= r[s] & 63
		case opArsh64K:
			r[d] = uint64(int64(r[d]) >> (uint64(x.imm) & 63))
		case opArsh64X:
			r[d] = uint64(int64(r[d]) >> (r[s] & 63))
		case opXor64K:
			r[d] ^= uint64(int64(x.imm))
		case opXor64X:
			r[d] ^= r[s]
		case opMov64K:
			r[d] = uint64(int64(x.imm))
		case opMov64X:
			r[d] = r[s]
		case opMovSX64B:
			r[d] = uint64(int64(int8(r[s])))
		case opMovSX64H:
			r[d] = uint64(int64(int16(r[s])))
		case opMovSX64W:
			r[d] = uint64(int64(int32(r[s])))
		case opNeg64:
			r[d] = -r[d]

		// ALU32: operate on the low halves, zero-extend the result
		case opAdd32K:
			r[d] = uint64(uint32(r[d]) + uint32(x.imm))
		case opAdd32X:
			r[d] = uint64(uint32(r[d]) + uint32(r[s]))
		case opSub32K:
			r[d] = uint64(uint32(r[d]) - uint32(x.imm))
		case opSub32X:
			r[d] = uint64(uint32(r[d]) - uint32(r[s]))
		case opMul32K:
			r[d] = uint64(uint32(r[d]) * uint32(x.imm))
		case opMul32X:
			r[d] = uint64(uint32(r[d]) * uint32(r[s]))
		case opDiv32K:
			r[d] = div32(uint32(r[d]), uint32(x.imm))
		case opDiv32X:
			r[d] = div32(uint32(r[d]), uint32(r[s]))
		case opSDiv32K:
			r[d] = sdiv32(uint32(r[d]), uint32(x.imm))
		case opSDiv32X:
			r[d] = sdiv32(uint32(r[d]), uint32(r[s]))
		case opMod32K:
			r[d] = mod32(uint32(r[d]), uint32(x.imm))
		case opMod32X:
			r[d] = mod32(uint32(r[d]), uint32(r[s]))
		case opSMod32K:
			r[d] = smod32(uint32(r[d]), uint32(x.imm))
		case opSMod32X:
			r[d] = smod32(uint32(r[d]), uint32(r[s]))
		case opOr32K:
			r[d] = uint64(uint32(r[d]) | uint32(x.imm))
		case opOr32X:
			r[d] = uint64(uint32(r[d]) | uint32(r[s]))
		case opAnd32K:
			r[d] = uint64(uint32(r[d]) & uint32(x.imm))
		case opAnd32X:
			r[d] = uint64(uint32(r[d]) & uint32(r[s]))
		case opLsh32K:
			r[d] = uint64(uint32(r[d]) << (uint32(x.imm) & 31))
		case opLsh32X:
			r[d] = uint64(uint32(r[d]) << (uint32(r[s]) & 31))
		case opRsh32K:
			r[d] = uint64(uint32(r[d]) >> (uint32(x.imm) & 31))
		case opRsh32X:
			r[d] = uint64(uint32(r[d]) >> (uint32(r[s]) & 31))
		case opArsh32K:
			r[d] = uint64(uint32(int32(r[d]) >> (uint32(x.imm) & 31)))
		case opArsh32X:
			r[d] = uint64(uint32(int32(r[d]) >> (uint32(r[s]) & 31)))
		case opXor32K:
			r[d] = uint64(uint32(r[d]) ^ uint32(x.imm))
		case opXor32X:
			r[d] = uint64(uint32(r[d]) ^ uint32(r[s]))
		case opMov32K:
			r[d] = uint64(uint32(x.imm))
		case opMov32X:
			r[d] = uint64(uint32(r[s]))
		case opMovSX32B:
			r[d] = uint64(uint32(int32(int8(r[s]))))
		case opMovSX32H:
			r[d] = uint64(uint32(int32(int16(r[s]))))
		case opNeg32:
			r[d] = uint64(-uint32(r[d]))

		// byte order
		case opZext16:
			r[d] = uint64(uint16(r[d]))
		case opZext32:
			r[d] = uint64(uint32(r[d]))
		case opNop:
		case opSwap16:
			r[d] = swap16(r[d])
		case opSwap32:
			r[d] = swap32(r[d])
		case opSwap64:
			r[d] = swap64(r[d])

		// jumps
		case opJA:
			pc += int(x.off)
		case opJA32:
			pc += int(x.imm)
		case opJEqK:
			if r[d] == uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJEqX:
			if r[d] == r[s] {
				pc += int(x.off)
			}
		case opJGtK:
			if r[d] > uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJGtX:
			if r[d] > r[s] {
				pc += int(x.off)
			}
		case opJGeK:
			if r[d] >= uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJGeX:
			if r[d] >= r[s] {
				pc += int(x.off)
			}
		case opJSetK:
			if r[d]&uint64(int64(x.imm)) != 0 {
				pc += int(x.off)
			}
		case opJSetX:
			if r[d]&r[s] != 0 {
				pc += int(x.off)
			}
		case opJNeK:
			if r[d] != uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJNeX:
			if r[d] != r[s] {
				pc += int(x.off)
			}
		case opJSGtK:
			if int64(r[d]) > int64(x.imm) {
				pc += int(x.off)
			}
		case opJSGtX:
			if int64(r[d]) > int64(r[s]) {
				pc += int(x.off)
			}
		case opJSGeK:
			if int64(r[d]) >= int64(x.imm) {
				pc += int(x.off)
			}
		case opJSGeX:
			if int64(r[d]) >= int64(r[s]) {
				pc += int(x.off)
			}
		case opJLtK:
			if r[d] < uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJLtX:
			if r[d] < r[s] {
				pc += int(x.off)
			}
		case opJLeK:
			if r[d] <= uint64(int64(x.imm)) {
				pc += int(x.off)
			}
		case opJLeX:
			if r[d] <= r[s] {
				pc += int(x.off)
			}
		case opJSLtK:
			if int64(r[d]) < int64(x.imm) {
				pc += int(x.off)
			}
		case opJSLtX:
			if int64(r[d]) < int64(r[s]) {
				pc += int(x.off)
			}
		case opJSLeK:
			if int64(r[d]) <= int64(x.imm) {
				pc += int(x.off)
			}
		case opJSLeX:
			if int64(r[d]) <= int64(r[s]) {
				pc += int(x.off)
			}
		case opJEq32K:
			if uint32(r[d]) == uint32(x.imm) {
				pc += int(x.off)
			}
		case opJEq32X:
			if uint32(r[d]) == uint32(r[s]) {
				pc += int(x.off)
			}
		case opJGt32K:
			if uint32(r[d]) > uint32(x.imm) {
				pc += int(x.off)
			}
		case opJGt32X:
			if uint32(r[d]) > uint32(r[s]) {
				pc += int(x.off)
			}
		case opJGe32K:
			if uint32(r[d]) >= uint32(x.imm) {
				pc += int(x.off)
			}
		case opJGe32X:
			if uint32(r[d]) >= uint32(r[s]) {
				pc += int(x.off)
			}
		case opJSet32K:
			if uint32(r[d])&uint32(x.imm) != 0 {
				pc += int(x.off)
			}
		case opJSet32X:
			if uint32(r[d])&uint32(r[s]) != 0 {
				pc += int(x.off)
			}
		case opJNe32K:
			if uint32(r[d]) != uint32(x.imm) {
				pc += int(x.off)
			}
		case opJNe32X:
			if uint32(r[d]) != uint32(r[s]) {
				pc += int(x.off)
			}
		case opJSGt32K:
			if int32(r[d]) > x.imm {
				pc += int(x.off)
			}
		case opJSGt32X:
			if int32(r[d]) > int32(r[s]) {
				pc += int(x.off)
			}
		case opJSGe32K:
			if int32(r[d]) >= x.imm {
				pc += int(x.off)
			}
		case opJSGe32X:
			if int32(r[d]) >= int32(r[s]) {
				pc += int(x.off)
			}
		case opJLt32K:
			if uint32(r[d]) < uint32(x.imm) {
				pc += int(x.off)
			}
		case opJLt32X:
			if uint32(r[d]) < uint32(r[s]) {
				pc += int(x.off)
			}
		case opJLe32K:
			if uint32(r[d]) <= uint32(x.imm) {
				pc += int(x.off)
			}
		case opJLe32X:
			if uint32(r[d]) <= uint32(r[s]) {
				pc += int(x.off)
			}
		case opJSLt32K:
			if int32(r[d]) < x.imm {
				pc += int(x.off)
			}
		case opJSLt32X:
			if int32(r[d]) < int32(r[s]) {
				pc += int(x.off)
			}
		case opJSLe32K:
			if int32(r[d]) <= x.imm {
				pc += int(x.off)
			}
		case opJSLe32X:
			if int32(r[d]) <= int32(r[s]) {
				pc += int(x.off)
			}

		// 64-bit immediates (pseudo forms were resolved by prepare)
		case opLdImm64:
			r[d] = uint64(uint32(x.imm)) | uint64(uint32(insns[pc+1].imm))<<32
			pc++ // one instruction in two slots

		// loads
		case opLdxB:
			a := r[s] + uint64(int64(x.off))
			if !fastOK(m, a, 1) {
				return pc, budget
			}
			r[d] = uint64(*(*uint8)(ptr(a)))
		case opLdxH:
			a := r[s] + uint64(int64(x.off))
			if !fastOK(m, a, 2) {
				return pc, budget
			}
			r[d] = uint64(*(*uint16)(ptr(a)))
		case opLdxW:
			a := r[s] + uint64(int64(x.off))
			if !fastOK(m, a, 4) {
				return pc, budget
			}
			r[d] = uint64(*(*uint32)(ptr(a)))
		case opLdxDW:
			a := r[s] + uint64(int64(x.off))
			if !fastOK(m, a, 8) {
				return pc, budget
			}
			r[d] = *(*uint64)(ptr(a))
		case opLdxSB:
			a := r[s] + uint64(int64(x.off))
			if !fastOK(m, a, 1) {
				return pc, budget
			}
			r[d] = uint64(int64(*(*int8)(ptr(a))))
		case opLdxSH:
			a := r[s] + uint64(int64(x.off))
			if !fastOK(m, a, 2) {
				return pc, budget
			}
			r[d] = uint64(int64(*(*int16)(ptr(a))))
		case opLdxSW:
			a := r[s] + uint64(int64(x.off))
			if !fastOK(m, a, 4) {
				return pc, budget
			}
			r[d] = uint64(int64(*(*int32)(ptr(a))))

		// stores of an immediate
		case opStB:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 1) {
				return pc, budget
			}
			*(*uint8)(ptr(a)) = uint8(x.imm)
		case opStH:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 2) {
				return pc, budget
			}
			*(*uint16)(ptr(a)) = uint16(x.imm)
		case opStW:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 4) {
				return pc, budget
			}
			*(*uint32)(ptr(a)) = uint32(x.imm)
		case opStDW:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 8) {
				return pc, budget
			}
			*(*uint64)(ptr(a)) = uint64(int64(x.imm))

		// stores of a register
		case opStxB:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 1) {
				return pc, budget
			}
			*(*uint8)(ptr(a)) = uint8(r[s])
		case opStxH:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 2) {
				return pc, budget
			}
			*(*uint16)(ptr(a)) = uint16(r[s])
		case opStxW:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 4) {
				return pc, budget
			}
			*(*uint32)(ptr(a)) = uint32(r[s])
		case opStxDW:
			a := r[d] + uint64(int64(x.off))
			if !fastOKW(m, a, 8) {
				return pc, budget
			}
			*(*uint64)(ptr(a)) = r[s]

		// superinstructions (fuse.go): the move, then the operation; two
		// instructions of the budget, so only when two remain
		case opMovAdd64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = r[s] + uint64(int64(x.imm))
			pc, budget = pc+1, budget-1
		case opMovAnd64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = r[s] & uint64(int64(x.imm))
			pc, budget = pc+1, budget-1
		case opMovOr64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = r[s] | uint64(int64(x.imm))
			pc, budget = pc+1, budget-1
		case opMovXor64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = r[s] ^ uint64(int64(x.imm))
			pc, budget = pc+1, budget-1
		case opMovLsh64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = r[s] << (uint64(x.imm) & 63)
			pc, budget = pc+1, budget-1
		case opMovRsh64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = r[s] >> (uint64(x.imm) & 63)
			pc, budget = pc+1, budget-1
		case opMovArsh64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = uint64(int64(r[s]) >> (uint64(x.imm) & 63))
			pc, budget = pc+1, budget-1
		case opMovMul64K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = r[s] * uint64(int64(x.imm))
			pc, budget = pc+1, budget-1
		case opMov32Add32K:
			if budget < 2 {
				return pc, budget
			}
			r[d] = uint64(uint32(r[s]) + uint32(x.imm))
			pc, budget = pc+1, budget-1

		// bpf_map_lookup_elem on an ARRAY (inline.go) with the key on the
		// stack and room in the range list (appending must not grow it)
		case opCallArrayLookup:
			k := r[2]
			a := m.code.prog.Maps[x.imm].Array
			n := len(m.ranges)
			if k-m.lo > m.span-4 || n == cap(m.ranges) {
				return pc, budget
			}
			r[0] = 0
			if idx := *(*uint32)(ptr(k)); idx < a.Len {
				v := memRange{lo: uint64(a.First) + uint64(idx)*uint64(a.Stride), n: uint64(a.ValueSize), w: !a.ReadOnly}
				m.ranges = m.ranges[:n+1]
				m.ranges[n] = v
				m.hot = v
				r[0] = v.lo
			}

		// bpf_spin_lock / unlock when the word is free / has no waiter
		// (locks.go); anything else is the helper's, through exec.
		case opCallSpinLock:
			a := r[1]
			if m.LockTag == 0 || m.held != 0 || a&3 != 0 || !fastOKW(m, a, 4) || !m.tryLock(a) {
				return pc, budget
			}
			m.held = a
			r[0] = 0
		case opCallSpinUnlock:
			a := r[1]
			if m.LockTag == 0 || m.SlowUnlock || a != m.held || a == 0 || !m.tryUnlock(a) {
				return pc, budget
			}
			m.held = 0
			r[0] = 0

		default:
			return pc, budget
		}
		pc++
		budget--
	}
	return pc, budget
}

// fastOK: [a, a+n) lies in the current stack frames, ctx, or the hot
// range (see Machine.hot); fastOKW: and may be written.
func fastOK(m *Machine, a, n uint64) bool {
	if a-m.lo <= m.span-n {
		return true
	}
	if off := a - m.ctxLo; off < m.ctxN && n <= m.ctxN-off {
		return true
	}
	off := a - m.hot.lo
	return off < m.hot.n && n <= m.hot.n-off
}

func fastOKW(m *Machine, a, n uint64) bool {
	if a-m.lo <= m.span-n {
		return true
	}
	if off := a - m.ctxLo; off < m.ctxN && n <= m.ctxN-off {
		return true
	}
	off := a - m.hot.lo
	return off < m.hot.n && n <= m.hot.n-off && m.hot.w
}
