package verifier

import (
	"fmt"

	"github.com/userbpf/userbpf/internal/isa"
	"github.com/userbpf/userbpf/vm"
)

// sizeOf is the access size of a load or store opcode.
func sizeOf(op uint8) int64 {
	return [4]int64{4, 2, 1, 8}[(op>>3)&3]
}

// ldx is a load: dst = *(size *)(src + off).
func (v *verifier) ldx(pc int, ins vm.Insn, st *state) error {
	mode := ins.Op & 0xe0
	if mode != isa.ModeMEM && mode != isa.ModeMEMSX {
		return v.errAt(pc, ErrInvalidInsn, fmt.Sprintf("load of mode %#x", mode))
	}
	base, err := v.readReg(pc, st, ins.Src)
	if err != nil {
		return err
	}
	x, err := v.access(pc, st, ins.Src, base, int64(ins.Off), sizeOf(ins.Op), false, nil)
	if err != nil {
		return err
	}
	switch size := sizeOf(ins.Op); {
	case x.k == kPkt || x.k == kPktEnd || x.k == kPktMeta:
		// A context field the kernel turns into a packet pointer.
	case mode == isa.ModeMEMSX:
		x = scalar()
	case size != 8:
		x = atMost(1<<(8*uint(size)) - 1)
	}
	return v.setReg(pc, st, ins.Dst, x)
}

// store is ST (an immediate), STX (a register) and the atomics.
func (v *verifier) store(pc int, ins vm.Insn, st *state) error {
	mode := ins.Op & 0xe0
	size := sizeOf(ins.Op)
	base, err := v.readReg(pc, st, ins.Dst)
	if err != nil {
		return err
	}
	if ins.Op&7 == isa.ClassST {
		val := constant(int64(ins.Imm))
		_, err := v.access(pc, st, ins.Dst, base, int64(ins.Off), size, true, &val)
		return err
	}
	src, err := v.readReg(pc, st, ins.Src)
	if err != nil {
		return err
	}
	switch mode {
	case isa.ModeMEM:
		_, err := v.access(pc, st, ins.Dst, base, int64(ins.Off), size, true, &src)
		return err
	case isa.ModeATOMIC:
		return v.atomic(pc, ins, st, base, src, size)
	}
	return v.errAt(pc, ErrInvalidInsn, fmt.Sprintf("store of mode %#x", mode))
}

// atomic checks a BPF_ATOMIC instruction (its Imm names the operation).
func (v *verifier) atomic(pc int, ins vm.Insn, st *state, base, src reg, size int64) error {
	switch ins.Imm {
	case isa.AtomicLoadAcq: // dst = load_acquire(src + off): here Dst is the result
		b, err := v.readReg(pc, st, ins.Src)
		if err != nil {
			return err
		}
		x, err := v.access(pc, st, ins.Src, b, int64(ins.Off), size, false, nil)
		if err != nil {
			return err
		}
		if size != 8 {
			x = scalar()
		}
		return v.setReg(pc, st, ins.Dst, x)
	case isa.AtomicStoreRel:
		_, err := v.access(pc, st, ins.Dst, base, int64(ins.Off), size, true, &src)
		return err
	}
	if src.k != kScalar {
		return v.errAt(pc, ErrMemAccess, fmt.Sprintf("R%d is %s: atomic operations take a number", ins.Src, src.typeName()))
	}
	if _, err := v.access(pc, st, ins.Dst, base, int64(ins.Off), size, false, nil); err != nil {
		return err
	}
	val := scalar()
	if _, err := v.access(pc, st, ins.Dst, base, int64(ins.Off), size, true, &val); err != nil {
		return err
	}
	switch {
	case ins.Imm == isa.AtomicCmpXchg:
		if _, err := v.readReg(pc, st, 0); err != nil {
			return err
		}
		return v.setReg(pc, st, 0, scalar())
	case ins.Imm&isa.AtomicFetch != 0:
		return v.setReg(pc, st, ins.Src, scalar())
	}
	return nil
}

// ldAbs is the legacy packet load (LD_ABS, LD_IND): R6 must be the
// context; R0 gets the data, R1-R5 are clobbered.
func (v *verifier) ldAbs(pc int, ins vm.Insn, st *state) error {
	if st.lock.held {
		return v.errAt(pc, ErrLockHeld, fmt.Sprintf("LD_ABS/LD_IND while the bpf_spin_lock taken at insn %d is held", st.lock.at))
	}
	r6, err := v.readReg(pc, st, 6)
	if err != nil {
		return err
	}
	if r6.k != kCtx {
		return v.errAt(pc, ErrArg, fmt.Sprintf("R6 is %s, expected ctx: LD_ABS/LD_IND read the packet through R6", r6.typeName()))
	}
	if ins.Op&0xe0 == isa.ModeIND {
		if _, err := v.readReg(pc, st, ins.Src); err != nil {
			return err
		}
	}
	f := st.cur()
	clobberCallerSaved(f)
	f.regs[0] = scalar()
	return nil
}

// access checks a load (write false) or store of size bytes at base+off,
// where base is register regno, and returns the loaded value. A store of
// val to the stack records it (a spill when it is a whole aligned slot).
func (v *verifier) access(pc int, st *state, regno uint8, base reg, off, size int64, write bool, val *reg) (reg, error) {
	verb := "load from"
	if write {
		verb = "store to"
	}
	if base.k == kGone {
		return reg{}, v.goneErr(pc, regno, base)
	}
	if base.k == kPktEnd {
		return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("R%d is pkt_end: %s the end of the packet (compare pointers with it, do not dereference it)", regno, verb))
	}
	if !base.k.isPtr() {
		return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("R%d is %s, expected a pointer: %s a non-pointer", regno, base.typeName(), verb))
	}
	if base.null {
		return reg{}, v.errAt(pc, ErrNullCheck, fmt.Sprintf("R%d is %s, expected %s: check it for NULL first", regno, base.typeName(), base.k))
	}
	o := base.off + off
	bounds := func(limit int64, what string) error {
		if o < 0 || o+size > limit {
			return v.errAt(pc, ErrMemAccess, fmt.Sprintf("%s %d bytes at offset %d of %s (%d bytes)", verb, size, o, what, limit))
		}
		return nil
	}
	special := func(fs []Field, hasLock bool, lockOff uint32, what string) error {
		if base.varOff {
			if !hasLock && len(fs) == 0 {
				return nil
			}
			if !base.bounded || base.umax > 1<<31 {
				return v.errAt(pc, ErrSpecialField, fmt.Sprintf("R%d is %s at an unbounded variable offset and %s holds special fields (a bpf_spin_lock or graph root): bound the index (i & MASK, i < N)", regno, base, what))
			}
			if f, ok := overlapsSpecial(fs, hasLock, lockOff, o, int64(base.umax)+size); ok {
				return v.errAt(pc, ErrSpecialField, fmt.Sprintf("%s offsets %d..%d of %s may overlap its %s: use the bpf_spin_lock helpers and graph kfuncs, not loads and stores", verb, o, o+int64(base.umax)+size-1, what, f))
			}
			return nil
		}
		if f, ok := overlapsSpecial(fs, hasLock, lockOff, o, size); ok {
			return v.errAt(pc, ErrSpecialField, fmt.Sprintf("%s offset %d of %s overlaps its %s: use the bpf_spin_lock helpers and graph kfuncs, not loads and stores", verb, o, what, f))
		}
		return nil
	}
	switch base.k {
	case kCtx:
		if base.varOff {
			return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("R%d is ctx at a variable offset: context fields are read at constant offsets", regno))
		}
		if o < 0 {
			return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("%s ctx at negative offset %d", verb, o))
		}
		if k := v.ctxPacketField(o); k != kNone {
			if write || size != 4 {
				return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("%s ctx offset %d (%d bytes): the packet's %s field is read with a 4-byte load only", verb, o, size, k))
			}
			return reg{k: k}, nil
		}
		return scalar(), nil
	case kPkt, kPktMeta:
		return v.packetAccess(pc, regno, base, write, val)
	case kStack:
		return v.stackAccess(pc, st, regno, base, o, size, write, val)
	case kMapValue:
		m := base.m
		what := fmt.Sprintf("map %s's value", m.Name)
		if write && m.ReadOnly {
			return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("store to map %s, which is read-only for programs", m.Name))
		}
		if err := special(m.Fields, m.HasLock, m.LockOff, what); err != nil {
			return reg{}, err
		}
		if !base.varOff {
			if err := bounds(int64(m.ValueSize), what); err != nil {
				return reg{}, err
			}
		}
	case kMapKey:
		if write {
			return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("store to map %s's key, which is read-only", base.m.Name))
		}
		if !base.varOff {
			if err := bounds(int64(base.m.KeySize), fmt.Sprintf("map %s's key", base.m.Name)); err != nil {
				return reg{}, err
			}
		}
	case kMem:
		if write && base.ro {
			return reg{}, v.errAt(pc, ErrMemAccess, "store to read-only memory")
		}
		if !base.varOff {
			if err := bounds(base.size, "the memory"); err != nil {
				return reg{}, err
			}
		}
	case kObj:
		what := "the object"
		if base.obj != nil {
			what = "struct " + base.obj.Name
			if err := special(base.obj.Fields, base.obj.HasLock, base.obj.LockOff, what); err != nil {
				return reg{}, err
			}
			if !base.varOff {
				if err := bounds(int64(base.obj.Size), what); err != nil {
					return reg{}, err
				}
			}
		}
	}
	return scalar(), nil
}

// stackAccess is a load or store at byte o of a stack frame.
func (v *verifier) stackAccess(pc int, st *state, regno uint8, base reg, o, size int64, write bool, val *reg) (reg, error) {
	if int(base.frame) >= len(st.frames) {
		return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("R%d points to the stack of a frame that returned", regno))
	}
	if base.varOff {
		if write {
			return reg{}, nil // checked at run time; initialises nothing
		}
		return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("R%d is fp at a variable offset: stack reads need a constant offset", regno))
	}
	if o < -vm.StackSize || o > 0 || o+size > 0 {
		return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("access of %d bytes at fp%+d, outside the %d-byte stack frame", size, o, vm.StackSize))
	}
	f := st.frames[base.frame]
	if write {
		if size == 8 && o%8 == 0 && val != nil {
			f.stack[(o+vm.StackSize)/8] = slot{init: 0xff, spill: *val}
			return reg{}, nil
		}
		for b := o; b < o+size; b++ {
			s := &f.stack[(b+vm.StackSize)/8]
			s.init |= 1 << ((b + vm.StackSize) % 8)
			s.spill = reg{}
		}
		return reg{}, nil
	}
	if size == 8 && o%8 == 0 {
		s := f.stack[(o+vm.StackSize)/8]
		if s.spill.k != kNone {
			return s.spill, nil
		}
	}
	if err := v.stackInit(pc, f, o, size, fmt.Sprintf("the load through R%d", regno)); err != nil {
		return reg{}, err
	}
	return scalar(), nil
}

// stackInit checks that bytes [o, o+size) of frame f were written.
func (v *verifier) stackInit(pc int, f *frame, o, size int64, who string) error {
	for b := o; b < o+size; b++ {
		s := f.stack[(b+vm.StackSize)/8]
		if s.init&(1<<((b+vm.StackSize)%8)) == 0 {
			return v.errAt(pc, ErrUninitStack, fmt.Sprintf("%s reads %d bytes at fp%+d, but fp%+d was never written", who, size, o, b))
		}
	}
	return nil
}

// goneErr reports a use of an invalidated reference.
func (v *verifier) goneErr(pc int, regno uint8, r reg) error {
	why := "was released (dropped, pushed, submitted or discarded)"
	switch r.size {
	case goneUnlock:
		why = "was a non-owning reference, which bpf_spin_unlock ends"
	case goneRemove:
		why = "was a non-owning reference, which a removal from the tree ends"
	}
	return v.errAt(pc, ErrRefInvalid, fmt.Sprintf("R%d %s at insn %d: it may not be used after that", regno, why, r.off))
}

// Why a reference is gone (reg.size of a kGone value).
const (
	goneReleased = iota
	goneUnlock
	goneRemove
)
