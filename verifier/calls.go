package verifier

import (
	"fmt"

	"github.com/userbpf/userbpf/vm"
)

// call interprets a call: a bpf-to-bpf call enters the callee in a new
// context; helpers and kfuncs are checked against their prototypes.
func (v *verifier) call(ctx, pc int, ins vm.Insn, st *state) ([]cont, error) {
	switch ins.Src {
	case vm.CallLocal:
		return v.callLocal(ctx, pc, ins, st)
	case vm.CallKfunc:
		name, ok := v.p.Kfuncs[pc]
		if !ok {
			return nil, v.errAt(pc, ErrBadCall, "kfunc call without a name")
		}
		return v.callKfunc(ctx, pc, name, st)
	case vm.CallHelper:
		return v.callHelper(ctx, pc, ins.Imm, st)
	}
	return nil, v.errAt(pc, ErrInvalidInsn, fmt.Sprintf("call of kind %d", ins.Src))
}

func (v *verifier) callLocal(ctx, pc int, ins vm.Insn, st *state) ([]cont, error) {
	t := pc + 1 + int(ins.Imm)
	if st.lock.held {
		if f, ok := v.p.Funcs[t]; ok && f.Global {
			return nil, v.errAt(pc, ErrLockHeld, fmt.Sprintf("call of the global function %s while the bpf_spin_lock taken at insn %d is held: make it static", f.Name, st.lock.at))
		}
	}
	if len(st.frames) >= vm.MaxCallDepth {
		return nil, v.errAt(pc, ErrCallDepth, fmt.Sprintf("call of %s at depth %d (at most %d frames)", v.funcName(t), len(st.frames), vm.MaxCallDepth))
	}
	caller := st.cur()
	callee := &frame{ret: pc + 1}
	copy(callee.regs[1:6], caller.regs[1:6])
	callee.regs[10] = reg{k: kStack, frame: uint8(len(st.frames))}
	st.frames = append(st.frames, callee)
	return []cont{{v.ctxOf(ctx, pc), t, st}}, nil
}

// callbackFrame is the frame a callback starts in.
func (v *verifier) callbackFrame(st *state, cb *callback) *frame {
	f := &frame{ret: cb.call + 1, cb: cb}
	copy(f.regs[1:6], cb.args[:])
	f.regs[10] = reg{k: kStack, frame: uint8(len(st.frames))}
	return f
}

// enterCallback returns the continuations of a helper or kfunc that takes
// a callback: the state after it (the callback ran zero times) and the
// callback's entry. after is the caller's state after the call.
func (v *verifier) enterCallback(ctx, pc int, after *state, fn reg, cb *callback) ([]cont, error) {
	t := int(fn.off)
	if len(after.frames) >= vm.MaxCallDepth {
		return nil, v.errAt(pc, ErrCallDepth, fmt.Sprintf("callback %s at depth %d (at most %d frames)", v.funcName(t), len(after.frames), vm.MaxCallDepth))
	}
	in := after.clone()
	in.frames = append(in.frames, v.callbackFrame(in, cb))
	return []cont{{ctx, pc + 1, after}, {v.ctxOf(ctx, pc), t, in}}, nil
}
