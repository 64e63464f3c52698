package verifier

import "fmt"

// The lock discipline (kernel-map-semantics §3.3): bpf_spin_lock only on
// the lock field of a map value or allocated object, at a constant offset;
// one lock at a time; bpf_spin_unlock of that same lock; nothing but
// unlock and graph kfuncs while it is held; unlocked on every path to
// exit. Graph roots are guarded by the lock of the value or object that
// holds them (§7.1).

// lockTarget checks that r points exactly at a bpf_spin_lock field and
// returns the lock it names.
func (v *verifier) lockTarget(pc int, r reg, name string) (lockState, error) {
	bad := func(sentinel error, format string, x ...any) (lockState, error) {
		return lockState{}, v.errAt(pc, sentinel, fmt.Sprintf("%s: R1 ", name)+fmt.Sprintf(format, x...))
	}
	if r.null {
		return bad(ErrNullCheck, "is %s: check the lookup result for NULL before locking", r.typeName())
	}
	var hasLock bool
	var lockOff uint32
	var what string
	switch r.k {
	case kMapValue:
		hasLock, lockOff, what = r.m.HasLock, r.m.LockOff, "map "+r.m.Name+"'s value"
	case kObj:
		if r.obj == nil {
			return bad(ErrLock, "is an object of unknown type")
		}
		hasLock, lockOff, what = r.obj.HasLock, r.obj.LockOff, "struct "+r.obj.Name
	default:
		return bad(ErrLock, "is %s, expected a pointer to the bpf_spin_lock in a map value or allocated object", r.typeName())
	}
	if !hasLock {
		return bad(ErrLock, "points into %s, which has no struct bpf_spin_lock", what)
	}
	if r.varOff {
		return bad(ErrLock, "is %s at a variable offset: the lock must be named at its constant offset (&v->lock)", r.k)
	}
	if r.off != int64(lockOff) {
		return bad(ErrLock, "points to offset %d of %s, but its bpf_spin_lock is at offset %d", r.off, what, lockOff)
	}
	return lockState{held: true, at: pc, m: r.m, obj: r.obj, id: r.id}, nil
}

// spinLock takes the lock R1 names.
func (v *verifier) spinLock(pc int, st *state, r reg) error {
	l, err := v.lockTarget(pc, r, "bpf_spin_lock")
	if err != nil {
		return err
	}
	if st.lock.held {
		return v.errAt(pc, ErrLock, fmt.Sprintf("bpf_spin_lock while the lock taken at insn %d is held: a program may hold one lock at a time", st.lock.at))
	}
	if r.k == kMapValue {
		l.obj = nil
	} else {
		l.m = nil
	}
	st.lock = l
	return nil
}

// spinUnlock releases the lock R1 names; non-owning references die.
func (v *verifier) spinUnlock(pc int, st *state, r reg) error {
	l, err := v.lockTarget(pc, r, "bpf_spin_unlock")
	if err != nil {
		return err
	}
	if !st.lock.held {
		return v.errAt(pc, ErrLock, "bpf_spin_unlock without a held lock")
	}
	if r.k == kMapValue {
		l.obj = nil
	} else {
		l.m = nil
	}
	if l.m != st.lock.m || l.obj != st.lock.obj || (l.id != st.lock.id && st.lock.id != 0 && l.id != 0) {
		return v.errAt(pc, ErrLock, fmt.Sprintf("bpf_spin_unlock of another lock than the one taken at insn %d", st.lock.at))
	}
	st.lock = lockState{}
	invalidateNonOwning(st, pc, 0, goneUnlock)
	return nil
}

// invalidateNonOwning ends every non-owning object reference (after
// bpf_spin_unlock, or a removal from a graph), except those of object
// identity keep.
func invalidateNonOwning(st *state, pc int, keep uint32, why int64) {
	st.eachReg(func(x *reg) {
		if x.k == kObj && !x.own && (keep == 0 || x.id != keep) {
			*x = reg{k: kGone, off: int64(pc), size: why}
		}
	})
}

// graphRoot checks that r points at a root of kind want (bpf_list_head or
// bpf_rb_root) whose guarding lock is held, and returns the root's field.
func (v *verifier) graphRoot(pc int, st *state, name string, rn int, r reg, want FieldKind) (*Field, error) {
	bad := func(sentinel error, format string, x ...any) (*Field, error) {
		return nil, v.errAt(pc, sentinel, fmt.Sprintf("%s: R%d ", name, rn)+fmt.Sprintf(format, x...))
	}
	if r.k == kGone {
		return nil, v.goneErr(pc, uint8(rn), r)
	}
	if r.null {
		return bad(ErrNullCheck, "is %s: check it for NULL first", r.typeName())
	}
	var fs []Field
	var what string
	switch r.k {
	case kMapValue:
		fs, what = r.m.Fields, "map "+r.m.Name+"'s value"
	case kObj:
		if r.obj != nil {
			fs, what = r.obj.Fields, "struct "+r.obj.Name
		}
	default:
		return bad(ErrArg, "is %s, expected a pointer to a %s in a map value or object", r.typeName(), want)
	}
	if r.varOff {
		return bad(ErrArg, "is %s at a variable offset, expected the %s at its constant offset", r.k, want)
	}
	f := fieldAt(fs, r.off)
	if f == nil || f.Kind != want {
		return bad(ErrArg, "points to offset %d of %s, where there is no %s", r.off, what, want)
	}
	l := st.lock
	if !l.held {
		return bad(ErrGraphLock, "is a %s guarded by the bpf_spin_lock of %s: take that lock first", want, what)
	}
	same := (l.id == r.id || l.id == 0 || r.id == 0) && ((r.k == kMapValue && l.m == r.m) || (r.k == kObj && l.obj == r.obj))
	if !same {
		return bad(ErrGraphLock, "is a %s of %s, but the lock held (taken at insn %d) is not the one in that same value", want, what, l.at)
	}
	if f.Elem == nil {
		return bad(ErrArg, "is a %s without a contains:type:node declaration tag", want)
	}
	return f, nil
}
