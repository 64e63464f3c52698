package verifier

import (
	"fmt"
	"slices"
)

// kfunc is a kfunc's check: it reads the arguments from st's current
// frame, applies the kfunc's effects and sets R0.
type kfunc struct {
	// lockOK says the kfunc may be called while a lock is held (the graph
	// API's allow-list).
	lockOK bool
	// nargs is the number of arguments (R1..R(nargs) must be set).
	nargs int
	check func(v *verifier, k *kcall) ([]cont, error)
}

// kcall is one kfunc call being checked.
type kcall struct {
	ctx, pc int
	name    string
	st      *state
	args    [5]reg
}

func (k *kcall) fail(v *verifier, sentinel error, rn int, format string, x ...any) error {
	return v.errAt(k.pc, sentinel, fmt.Sprintf("%s: R%d ", k.name, rn)+fmt.Sprintf(format, x...))
}

// done sets R0 (R1-R5 are clobbered) and continues after the call.
func (k *kcall) done(r0 reg) ([]cont, error) {
	f := k.st.cur()
	clobberCallerSaved(f)
	f.regs[0] = r0
	return []cont{{k.ctx, k.pc + 1, k.st}}, nil
}

// kfuncs are the kfuncs the verifier knows, by name: the open-coded
// numeric iterator and the graph API (kernel-map-semantics §7.2).
var kfuncs = map[string]*kfunc{
	"bpf_iter_num_new":          {nargs: 3, check: kfIterNumNew},
	"bpf_iter_num_next":         {nargs: 1, check: kfIterNumNext},
	"bpf_iter_num_destroy":      {nargs: 1, check: kfIterNumDestroy},
	"bpf_obj_new_impl":          {nargs: 2, check: kfObjNew},
	"bpf_obj_drop_impl":         {nargs: 2, check: kfObjDrop},
	"bpf_refcount_acquire_impl": {lockOK: true, nargs: 2, check: kfRefcountAcquire},
	"bpf_list_push_front_impl":  {lockOK: true, nargs: 4, check: kfPush(ListHead)},
	"bpf_list_push_back_impl":   {lockOK: true, nargs: 4, check: kfPush(ListHead)},
	"bpf_list_pop_front":        {lockOK: true, nargs: 1, check: kfPop},
	"bpf_list_pop_back":         {lockOK: true, nargs: 1, check: kfPop},
	"bpf_rbtree_add_impl":       {lockOK: true, nargs: 5, check: kfPush(RBRoot)},
	"bpf_rbtree_first":          {lockOK: true, nargs: 1, check: kfRBFirst},
	"bpf_rbtree_remove":         {lockOK: true, nargs: 2, check: kfRBRemove},
}

func (v *verifier) callKfunc(ctx, pc int, name string, st *state) ([]cont, error) {
	kf := kfuncs[name]
	if kf == nil {
		return nil, v.errAt(pc, ErrBadCall, fmt.Sprintf("call of kfunc %s, which userbpf does not implement", name))
	}
	if st.lock.held && !kf.lockOK {
		return nil, v.errAt(pc, ErrLockHeld, fmt.Sprintf("call of %s while the bpf_spin_lock taken at insn %d is held: only bpf_spin_unlock and graph kfuncs may be called in the critical section", name, st.lock.at))
	}
	k := &kcall{ctx: ctx, pc: pc, name: name, st: st}
	copy(k.args[:], st.cur().regs[1:6])
	for i := 0; i < kf.nargs; i++ {
		switch k.args[i].k {
		case kNone:
			return nil, k.fail(v, ErrUninitReg, i+1, "(argument %d) is not set", i+1)
		case kGone:
			return nil, v.goneErr(pc, uint8(i+1), k.args[i])
		}
	}
	return kf.check(v, k)
}

// iterSlot checks that R1 points to an 8-byte struct bpf_iter_num on the
// stack.
func iterSlot(v *verifier, k *kcall, init bool) error {
	r := k.args[0]
	if r.k != kStack || r.varOff || r.null {
		return k.fail(v, ErrArg, 1, "is %s, expected a struct bpf_iter_num on the stack", r.typeName())
	}
	name := k.name
	return v.checkMemArg(k.pc, k.st, name, 1, r, 8, !init, true, "a struct bpf_iter_num is 8 bytes")
}

func kfIterNumNew(v *verifier, k *kcall) ([]cont, error) {
	if err := iterSlot(v, k, false); err != nil {
		return nil, err
	}
	return k.done(scalar())
}

func kfIterNumNext(v *verifier, k *kcall) ([]cont, error) {
	if err := iterSlot(v, k, true); err != nil {
		return nil, err
	}
	r := k.args[0]
	return k.done(reg{k: kStack, frame: r.frame, off: r.off, null: true, id: v.idOf(k.ctx, k.pc)})
}

func kfIterNumDestroy(v *verifier, k *kcall) ([]cont, error) {
	if err := iterSlot(v, k, true); err != nil {
		return nil, err
	}
	return k.done(scalar())
}

// kfObjNew is bpf_obj_new(type): R1 is the local type id a CO-RE
// relocation names; the result is an owning reference or NULL.
func kfObjNew(v *verifier, k *kcall) ([]cont, error) {
	r := k.args[0]
	if !r.isConst() || r.obj == nil {
		return nil, k.fail(v, ErrArg, 1, "is %s, expected a type id from bpf_core_type_id_local (use the bpf_obj_new(type) macro)", r.typeName())
	}
	id := v.idOf(k.ctx, k.pc)
	k.st.addRef(acquired{id: id, at: k.pc, what: "bpf_obj_new object"})
	return k.done(reg{k: kObj, obj: r.obj, own: true, null: true, id: id, ref: id})
}

// owned checks that argument rn is an owning, checked reference to an
// object of type want (any if nil) at offset off.
func owned(v *verifier, k *kcall, rn int, want *ObjType, off int64, what string) (reg, error) {
	r := k.args[rn-1]
	if r.k != kObj {
		return r, k.fail(v, ErrArg, rn, "is %s, expected %s", r.typeName(), what)
	}
	if r.null {
		return r, k.fail(v, ErrNullCheck, rn, "is %s: check it for NULL first", r.typeName())
	}
	if !r.own || r.ref == 0 {
		return r, k.fail(v, ErrRefInvalid, rn, "is a non-owning reference (the object is in a list or tree), expected an owned object")
	}
	if !k.st.hasRef(r.ref) {
		return r, k.fail(v, ErrRefInvalid, rn, "is an object that was already released")
	}
	if want != nil && r.obj != want {
		return r, k.fail(v, ErrArg, rn, "is a struct %s, expected a struct %s", r.obj.Name, want.Name)
	}
	if r.varOff || r.off != off {
		return r, k.fail(v, ErrArg, rn, "points to offset %d of the object, expected %s", r.off, what)
	}
	return r, nil
}

func kfObjDrop(v *verifier, k *kcall) ([]cont, error) {
	r, err := owned(v, k, 1, nil, 0, "the pointer bpf_obj_new (or a pop/remove, via container_of) returned")
	if err != nil {
		return nil, err
	}
	v.release(k.st, r.ref, k.pc)
	return k.done(scalar())
}

func kfRefcountAcquire(v *verifier, k *kcall) ([]cont, error) {
	r := k.args[0]
	if r.k != kObj || r.obj == nil || r.varOff || r.off != 0 {
		return nil, k.fail(v, ErrArg, 1, "is %s, expected a pointer to a refcounted object", r.typeName())
	}
	if r.null {
		return nil, k.fail(v, ErrNullCheck, 1, "is %s: check it for NULL first", r.typeName())
	}
	if !slices.ContainsFunc(r.obj.Fields, func(f Field) bool { return f.Kind == Refcount }) {
		return nil, k.fail(v, ErrArg, 1, "is a struct %s, which has no struct bpf_refcount", r.obj.Name)
	}
	id := v.idOf(k.ctx, k.pc)
	k.st.addRef(acquired{id: id, at: k.pc, what: "bpf_refcount_acquire reference"})
	return k.done(reg{k: kObj, obj: r.obj, own: true, null: !r.own, id: id, ref: id})
}

// kfPush is bpf_list_push_front/back and bpf_rbtree_add: the node's
// owning reference is consumed; the program keeps a non-owning one until
// the lock is released.
func kfPush(kind FieldKind) func(v *verifier, k *kcall) ([]cont, error) {
	return func(v *verifier, k *kcall) ([]cont, error) {
		f, err := v.graphRoot(k.pc, k.st, k.name, 1, k.args[0], kind)
		if err != nil {
			return nil, err
		}
		node, err := owned(v, k, 2, f.Elem, int64(f.NodeOff), fmt.Sprintf("&obj->node of a struct %s (offset %d)", f.Elem.Name, f.NodeOff))
		if err != nil {
			return nil, err
		}
		var less reg
		if kind == RBRoot {
			less = k.args[2]
			if less.k != kFunc {
				return nil, k.fail(v, ErrArg, 3, "is %s, expected the less callback (a static function)", less.typeName())
			}
		}
		k.st.dropRef(node.ref)
		k.st.eachReg(func(x *reg) {
			if x.ref == node.ref {
				x.own, x.ref = false, 0
			}
		})
		out, err := k.done(scalar())
		if err != nil || kind != RBRoot {
			return out, err
		}
		arg := reg{k: kObj, obj: f.Elem, off: int64(f.NodeOff)}
		cb := &callback{call: k.pc, name: "bpf_rbtree_add less", less: true, args: [5]reg{arg, arg}}
		return v.enterCallback(k.ctx, k.pc, k.st, less, cb)
	}
}

func kfPop(v *verifier, k *kcall) ([]cont, error) {
	f, err := v.graphRoot(k.pc, k.st, k.name, 1, k.args[0], ListHead)
	if err != nil {
		return nil, err
	}
	return acquireNode(v, k, f, "node popped from a list")
}

func acquireNode(v *verifier, k *kcall, f *Field, what string) ([]cont, error) {
	id := v.idOf(k.ctx, k.pc)
	k.st.addRef(acquired{id: id, at: k.pc, what: what})
	return k.done(reg{k: kObj, obj: f.Elem, off: int64(f.NodeOff), own: true, null: true, id: id, ref: id})
}

func kfRBFirst(v *verifier, k *kcall) ([]cont, error) {
	f, err := v.graphRoot(k.pc, k.st, k.name, 1, k.args[0], RBRoot)
	if err != nil {
		return nil, err
	}
	return k.done(reg{k: kObj, obj: f.Elem, off: int64(f.NodeOff), null: true, id: v.idOf(k.ctx, k.pc)})
}

func kfRBRemove(v *verifier, k *kcall) ([]cont, error) {
	f, err := v.graphRoot(k.pc, k.st, k.name, 1, k.args[0], RBRoot)
	if err != nil {
		return nil, err
	}
	n := k.args[1]
	if n.k != kObj || n.obj != f.Elem || n.varOff || n.off != int64(f.NodeOff) {
		return nil, k.fail(v, ErrArg, 2, "is %s, expected &obj->node of a struct %s in the tree", n.typeName(), f.Elem.Name)
	}
	if n.null {
		return nil, k.fail(v, ErrNullCheck, 2, "is %s: check it for NULL first", n.typeName())
	}
	if n.own && !k.st.hasRef(n.ref) {
		return nil, k.fail(v, ErrRefInvalid, 2, "is an object that was already released")
	}
	// Other non-owning references may alias the removed node. An owning
	// reference (a refcounted object's, from bpf_refcount_acquire or a
	// pop) stays the program's: the removal hands it the tree's reference
	// as a new one, as the kernel does (it does not release the argument).
	invalidateNonOwning(k.st, k.pc, 0, goneRemove)
	return acquireNode(v, k, f, "node removed from a tree")
}
