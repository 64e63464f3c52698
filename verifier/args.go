package verifier

import (
	"fmt"
	"slices"

	"github.com/userbpf/userbpf/vm"
)

// callHelper checks a helper call against its prototype and applies its
// effects: R0 gets its result, R1-R5 are clobbered.
func (v *verifier) callHelper(ctx, pc int, id int32, st *state) ([]cont, error) {
	p := helpers[id]
	if p == nil {
		return nil, v.errAt(pc, ErrBadCall, fmt.Sprintf("call of helper %d, which userbpf does not implement", id))
	}
	if st.lock.held && !p.lockOK && id != vm.FnSpinLock {
		return nil, v.errAt(pc, ErrLockHeld, fmt.Sprintf("call of %s while the bpf_spin_lock taken at insn %d is held: only bpf_spin_unlock and graph kfuncs may be called in the critical section", p.name, st.lock.at))
	}
	if id == vm.FnTailCall && len(st.refs) > 0 {
		a := st.refs[0]
		return nil, v.errAt(pc, ErrRefLeak, fmt.Sprintf("bpf_tail_call would leak the %s acquired at insn %d", a.what, a.at))
	}
	f := st.cur()
	args := [5]reg{}
	copy(args[:], f.regs[1:6])
	for i, a := range p.args {
		if a == aNone {
			continue
		}
		if err := v.checkArg(pc, st, p, i, a, &args); err != nil {
			return nil, err
		}
	}
	switch id {
	case vm.FnSpinLock:
		if err := v.spinLock(pc, st, args[0]); err != nil {
			return nil, err
		}
	case vm.FnSpinUnlock:
		if err := v.spinUnlock(pc, st, args[0]); err != nil {
			return nil, err
		}
	case vm.FnRingbufSubmit, vm.FnRingbufDiscard:
		v.release(st, args[0].ref, pc)
	}
	clobberCallerSaved(f)
	r0 := scalar()
	switch p.ret {
	case rLookup:
		m := args[0].m
		if m.Inner != nil {
			r0 = reg{k: kMapPtr, m: m.Inner, null: true, id: v.idOf(ctx, pc)}
		} else {
			r0 = reg{k: kMapValue, m: m, null: true, id: v.idOf(ctx, pc)}
		}
	case rRecord:
		id := v.idOf(ctx, pc)
		r0 = reg{k: kMem, size: args[1].off, null: true, id: id, ref: id}
		st.addRef(acquired{id: id, at: pc, what: "ring buffer record"})
	case rMemOrNull:
		r0 = reg{k: kMem, size: args[2].off, null: true, id: v.idOf(ctx, pc)}
	}
	f.regs[0] = r0
	if p.cb != nil {
		cb := &callback{call: pc, name: p.name, args: p.cb(v, st, &args)}
		return v.enterCallback(ctx, pc, st, args[1], cb)
	}
	return []cont{{ctx, pc + 1, st}}, nil
}

// checkArg checks argument i (register R(i+1)) of a helper against its
// kind; a memory argument a helper writes is initialised.
func (v *verifier) checkArg(pc int, st *state, p *proto, i int, a argKind, args *[5]reg) error {
	r := args[i]
	rn := i + 1
	bad := func(sentinel error, format string, x ...any) error {
		return v.errAt(pc, sentinel, fmt.Sprintf("%s: R%d ", p.name, rn)+fmt.Sprintf(format, x...))
	}
	if r.k == kNone {
		return v.errAt(pc, ErrUninitReg, fmt.Sprintf("%s: R%d (argument %d) is not set", p.name, rn, rn))
	}
	if r.k == kGone {
		return v.goneErr(pc, uint8(rn), r)
	}
	switch a {
	case aAny:
		return nil
	case aSize, aSizeOrZero:
		size, ok := r.bound()
		switch {
		case r.k != kScalar || (p.constSize && !r.isConst()):
			return bad(ErrArg, "is %s, expected a constant size", r.typeName())
		case !ok || size > 1<<29:
			return bad(ErrArg, "is a size without an upper bound: bound it (len & MASK, or check len < N first)")
		case r.isConst() && (r.off < 0 || (a == aSize && r.off == 0)):
			return bad(ErrArg, "is size %d, expected a size > 0", r.off)
		}
		if i > 0 && (p.args[i-1] == aMemRead || p.args[i-1] == aMemWrite) {
			write := p.args[i-1] == aMemWrite
			// A write of a variable size initialises no byte for sure.
			return v.checkMemArg(pc, st, p.name, i, args[i-1], int64(size), write, r.isConst() || !write,
				fmt.Sprintf("R%d gives up to %d bytes", rn, size))
		}
		return nil
	case aMapPtr:
		if r.k != kMapPtr {
			return bad(ErrArg, "is %s, expected a map (&name of a map)", r.typeName())
		}
		if r.null {
			return bad(ErrNullCheck, "is %s, expected map_ptr: check the inner-map lookup for NULL first", r.typeName())
		}
		t := r.m.Type
		if (p.maps != nil && !slices.Contains(p.maps, t)) || slices.Contains(p.notMaps, t) {
			return bad(ErrArg, "is map %s of type %s, which %s does not take", r.m.Name, t, p.name)
		}
		return nil
	case aKey, aValue, aValueOut:
		m := args[0].m
		size, what := int64(m.KeySize), "key"
		if a != aKey {
			size, what = int64(m.ValueSize), "value"
		}
		if err := v.checkMemArg(pc, st, p.name, rn, r, size, a == aValueOut, true, fmt.Sprintf("map %s's %s is %d bytes", m.Name, what, size)); err != nil {
			return err
		}
		return nil
	case aMemRead, aMemWrite:
		if !r.k.isPtr() {
			return bad(ErrArg, "is %s, expected a pointer to memory", r.typeName())
		}
		return nil // checked with its size argument
	case aFunc:
		if r.k != kFunc {
			return bad(ErrArg, "is %s, expected a callback (a static function)", r.typeName())
		}
		return nil
	case aCtx:
		if r.k != kCtx || r.off != 0 || r.varOff {
			return bad(ErrArg, "is %s, expected the program's context", r.typeName())
		}
		return nil
	case aRecord:
		if r.k != kMem || r.ref == 0 {
			return bad(ErrArg, "is %s, expected a record from bpf_ringbuf_reserve", r.typeName())
		}
		if r.null {
			return bad(ErrNullCheck, "is %s: check the bpf_ringbuf_reserve result for NULL first", r.typeName())
		}
		if r.off != 0 || r.varOff {
			return bad(ErrArg, "points into the record at offset %d; pass the pointer bpf_ringbuf_reserve returned", r.off)
		}
		if !st.hasRef(r.ref) {
			return bad(ErrRefInvalid, "is a record that was already submitted or discarded")
		}
		return nil
	case aDynptr:
		if r.k != kDynptr && r.k != kStack {
			return bad(ErrArg, "is %s, expected a struct bpf_dynptr", r.typeName())
		}
		return nil
	case aLock:
		return nil // spinLock / spinUnlock check it
	}
	return nil
}

// checkMemArg checks that r (register rn) points to size accessible bytes;
// initialised ones unless write, in which case stack bytes become
// initialised (if mark: the size is exact). why explains the size in
// messages.
func (v *verifier) checkMemArg(pc int, st *state, name string, rn int, r reg, size int64, write, mark bool, why string) error {
	bad := func(sentinel error, format string, x ...any) error {
		return v.errAt(pc, sentinel, fmt.Sprintf("%s: R%d ", name, rn)+fmt.Sprintf(format, x...))
	}
	if r.k == kGone {
		return v.goneErr(pc, uint8(rn), r)
	}
	if !r.k.isPtr() {
		return bad(ErrArg, "is %s, expected a pointer (%s)", r.typeName(), why)
	}
	if r.null {
		return bad(ErrNullCheck, "is %s, expected %s: check it for NULL first", r.typeName(), r.k)
	}
	if size == 0 {
		return nil
	}
	switch r.k {
	case kStack:
		if r.varOff {
			if write {
				return nil
			}
			return bad(ErrArg, "is fp at a variable offset; pass a constant stack offset")
		}
		if int(r.frame) >= len(st.frames) {
			return bad(ErrArg, "points to the stack of a frame that returned")
		}
		if r.off < -vm.StackSize || r.off > 0 || size > vm.StackSize || r.off+size > 0 {
			return bad(ErrArg, "is fp%+d and %s: the range runs outside the stack frame", r.off, why)
		}
		f := st.frames[r.frame]
		if write {
			if !mark {
				return nil
			}
			for b := r.off; b < r.off+size; b++ {
				s := &f.stack[(b+vm.StackSize)/8]
				s.init |= 1 << ((b + vm.StackSize) % 8)
				s.spill = reg{}
			}
			return nil
		}
		if err := v.stackInit(pc, f, r.off, size, fmt.Sprintf("%s: R%d (%s)", name, rn, why)); err != nil {
			return err
		}
		return nil
	case kCtx:
		return nil
	}
	// Other memory: bounds (and special fields) as a direct access.
	if _, err := v.access(pc, st, uint8(rn), r, 0, size, false, nil); err != nil {
		return err
	}
	if write {
		x := scalar()
		if _, err := v.access(pc, st, uint8(rn), r, 0, size, true, &x); err != nil {
			return err
		}
	}
	return nil
}

// release releases reference ref (submitted, discarded, dropped, pushed):
// every register holding it becomes invalid.
func (v *verifier) release(st *state, ref uint32, pc int) {
	if ref == 0 {
		return
	}
	st.dropRef(ref)
	st.eachReg(func(x *reg) {
		if x.ref == ref {
			*x = reg{k: kGone, off: int64(pc)}
		}
	})
}
