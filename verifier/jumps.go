package verifier

import (
	"fmt"

	"github.com/userbpf/userbpf/internal/isa"
	"github.com/userbpf/userbpf/vm"
)

// jump interprets a jump-class instruction.
func (v *verifier) jump(ctx, pc int, ins vm.Insn, st *state) ([]cont, error) {
	op := ins.Op & 0xf0
	switch op {
	case isa.JmpJA:
		return []cont{{ctx, v.cfg.succ[pc][0], st}}, nil
	case isa.JmpCALL:
		return v.call(ctx, pc, ins, st)
	case isa.JmpEXIT:
		return v.exit(ctx, pc, st)
	case isa.JmpJCOND:
		return []cont{{ctx, pc + 1, st}, {ctx, pc + 1 + int(ins.Off), st.clone()}}, nil
	}
	dst, err := v.readReg(pc, st, ins.Dst)
	if err != nil {
		return nil, err
	}
	is64 := ins.Op&7 == isa.ClassJMP
	src := constant(int64(ins.Imm))
	if ins.Op&0x08 != 0 {
		if src, err = v.readReg(pc, st, ins.Src); err != nil {
			return nil, err
		}
	}
	fall, taken := pc+1, pc+1+int(ins.Off)
	// Both known: only one way is possible.
	if dst.isConst() && src.isConst() {
		if cmp(op, dst.off, src.off, is64) {
			return []cont{{ctx, taken, st}}, nil
		}
		return []cont{{ctx, fall, st}}, nil
	}
	other := st.clone()
	// A NULL check: pointer-or-NULL compared with 0.
	if (op == isa.JmpJEQ || op == isa.JmpJNE) && is64 {
		p, preg, z := dst, ins.Dst, src
		if !dst.null && src.null {
			p, preg, z = src, ins.Src, dst
		}
		if p.null && z.isConst() && z.off == 0 {
			isNull, notNull := other, st // JEQ: taken is NULL
			if op == isa.JmpJNE {
				isNull, notNull = st, other
			}
			v.markNull(isNull, preg, p, true)
			v.markNull(notNull, preg, p, false)
			return []cont{{ctx, fall, st}, {ctx, taken, other}}, nil
		}
		// dst == K on the taken branch of JEQ (fallthrough of JNE).
		if dst.k == kScalar && !dst.known && src.isConst() {
			eq := other
			if op == isa.JmpJNE {
				eq = st
			}
			eq.cur().regs[ins.Dst] = constant(src.off)
		}
	}
	// Unsigned comparisons with a constant bound the other side.
	if dst.k == kScalar && !dst.known && src.isConst() {
		refine(&other.cur().regs[ins.Dst], op, uint64(src.off), true, is64)
		refine(&st.cur().regs[ins.Dst], op, uint64(src.off), false, is64)
	} else if src.k == kScalar && !src.known && dst.isConst() && ins.Op&0x08 != 0 {
		m := mirror(op)
		refine(&other.cur().regs[ins.Src], m, uint64(dst.off), true, is64)
		refine(&st.cur().regs[ins.Src], m, uint64(dst.off), false, is64)
	}
	return []cont{{ctx, fall, st}, {ctx, taken, other}}, nil
}

// refine narrows the bound of scalar r after `r op k` was taken (or not).
func refine(r *reg, op uint8, k uint64, taken, is64 bool) {
	if r.k != kScalar || r.known {
		return
	}
	if !is64 {
		if b, ok := r.bound(); !ok || b > 0xffffffff {
			return // the comparison saw only the low 32 bits
		}
		k = uint64(uint32(k))
	}
	var ub uint64
	switch {
	case op == isa.JmpJLT && taken, op == isa.JmpJGE && !taken:
		if k == 0 {
			return
		}
		ub = k - 1
	case op == isa.JmpJLE && taken, op == isa.JmpJGT && !taken:
		ub = k
	default:
		return
	}
	if b, ok := r.bound(); ok && b < ub {
		ub = b
	}
	*r = atMost(ub)
}

// mirror is the comparison with its operands swapped (k op r ⇔ r op' k).
func mirror(op uint8) uint8 {
	switch op {
	case isa.JmpJLT:
		return isa.JmpJGT
	case isa.JmpJGT:
		return isa.JmpJLT
	case isa.JmpJLE:
		return isa.JmpJGE
	case isa.JmpJGE:
		return isa.JmpJLE
	}
	return 0
}

// markNull refines a NULL check of p (in register r): on the NULL branch
// every copy of it is the number 0 and the reference it held, if any, is
// gone; on the other branch every copy is a valid pointer.
func (v *verifier) markNull(st *state, r uint8, p reg, isNull bool) {
	same := func(x *reg) bool {
		if p.id != 0 {
			return x.id == p.id && x.k == p.k && x.null
		}
		return false
	}
	st.eachReg(func(x *reg) {
		if !same(x) {
			return
		}
		if isNull {
			*x = constant(0)
		} else {
			x.null = false
		}
	})
	f := st.cur()
	if isNull {
		f.regs[r] = constant(0)
		if p.ref != 0 {
			st.dropRef(p.ref)
		}
	} else {
		f.regs[r].null = false
	}
}

// cmp evaluates a comparison of two constants.
func cmp(op uint8, a, b int64, is64 bool) bool {
	ua, ub := uint64(a), uint64(b)
	sa, sb := a, b
	if !is64 {
		ua, ub = uint64(uint32(a)), uint64(uint32(b))
		sa, sb = int64(int32(a)), int64(int32(b))
	}
	switch op {
	case isa.JmpJEQ:
		return ua == ub
	case isa.JmpJNE:
		return ua != ub
	case isa.JmpJGT:
		return ua > ub
	case isa.JmpJGE:
		return ua >= ub
	case isa.JmpJLT:
		return ua < ub
	case isa.JmpJLE:
		return ua <= ub
	case isa.JmpJSET:
		return ua&ub != 0
	case isa.JmpJSGT:
		return sa > sb
	case isa.JmpJSGE:
		return sa >= sb
	case isa.JmpJSLT:
		return sa < sb
	case isa.JmpJSLE:
		return sa <= sb
	}
	return false
}

// exit returns from a function, a callback or the program.
func (v *verifier) exit(ctx, pc int, st *state) ([]cont, error) {
	f := st.cur()
	r0 := f.regs[0]
	if r0.k == kNone {
		return nil, v.errAt(pc, ErrUninitReg, "R0 is not set at exit: a function must return a value")
	}
	if len(st.frames) == 1 {
		if st.lock.held {
			return nil, v.errAt(pc, ErrLockHeld, fmt.Sprintf("exit with the bpf_spin_lock taken at insn %d held: unlock it on every path", st.lock.at))
		}
		if len(st.refs) > 0 {
			a := st.refs[0]
			return nil, v.errAt(pc, ErrRefLeak, fmt.Sprintf("exit without releasing the %s acquired at insn %d: %s", a.what, a.at, releaseHint(a.what)))
		}
		return nil, nil
	}
	parent := v.ctxs[ctx].parent
	if f.cb != nil {
		if r0.k != kScalar {
			return nil, v.errAt(pc, ErrArg, fmt.Sprintf("R0 is %s at the exit of the %s callback, expected a number", r0.typeName(), f.cb.name))
		}
		cb := f.cb
		after := st.clone()
		after.frames = after.frames[:len(after.frames)-1]
		caller := after.cur()
		clobberCallerSaved(caller)
		caller.regs[0] = scalar()
		// The callback may run again, from the state it left behind.
		again := after.clone()
		again.frames = append(again.frames, v.callbackFrame(again, cb))
		return []cont{{parent, cb.call + 1, after}, {ctx, v.cfg.entries[v.cfg.fn[pc]], again}}, nil
	}
	ret := f.ret
	st.frames = st.frames[:len(st.frames)-1]
	caller := st.cur()
	clobberCallerSaved(caller)
	if r0.k == kStack && int(r0.frame) >= len(st.frames) {
		return nil, v.errAt(pc, ErrMemAccess, "R0 points to the returning function's stack")
	}
	caller.regs[0] = r0
	return []cont{{parent, ret, st}}, nil
}

func releaseHint(what string) string {
	switch what {
	case "ring buffer record":
		return "submit or discard it on every path"
	}
	return "drop it (bpf_obj_drop) or hand it to a list or tree (push, rbtree_add) on every path"
}
