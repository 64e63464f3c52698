package verifier

import (
	"fmt"
	"slices"
	"strings"

	"github.com/userbpf/userbpf/vm"
)

// slotCount is the number of 8-byte slots in a stack frame.
const slotCount = vm.StackSize / 8

// slot is 8 bytes of a stack frame: which bytes are initialised, and the
// register spilled there by an aligned 8-byte store, if any.
type slot struct {
	init  uint8 // bit i: byte i of the slot was written
	spill reg   // k != kNone when the slot holds a spilled register
}

// frame is one call frame: registers and stack.
type frame struct {
	regs  [11]reg
	stack [slotCount]slot
	// ret is the instruction the frame returns to (its call + 1), or -1
	// for the program's own frame; callback frames return to their
	// helper's call + 1 as well, with cb set.
	ret int
	cb  *callback
}

// callback describes the helper or kfunc a callback frame runs under.
type callback struct {
	call int    // the helper or kfunc call instruction
	name string // for messages
	less bool   // bpf_rbtree_add's less: must not unlock, returns a bool
	args [5]reg // R1-R5 at its entry
}

// acquired is a reference the program must release: a ring-buffer record,
// an allocated object, an open iterator.
type acquired struct {
	id   uint32
	at   int    // instruction that acquired it
	what string // "bpf_obj_new object", "ring buffer record"…
}

// lockState is the bpf_spin_lock the program holds, if any.
type lockState struct {
	held bool
	at   int      // insn of the bpf_spin_lock call
	m    *Map     // lock in a value of m…
	obj  *ObjType // …or in an allocated object
	id   uint32   // the value or object instance
}

// state is the abstract machine state at one instruction.
type state struct {
	frames []*frame
	lock   lockState
	refs   []acquired // sorted by id
	from   int        // the instruction this state comes from (for messages)
}

func (s *state) cur() *frame { return s.frames[len(s.frames)-1] }

func (s *state) clone() *state {
	c := &state{frames: make([]*frame, len(s.frames)), lock: s.lock, refs: slices.Clone(s.refs), from: s.from}
	for i, f := range s.frames {
		nf := *f
		c.frames[i] = &nf
	}
	return c
}

func (s *state) hasRef(id uint32) bool {
	for _, a := range s.refs {
		if a.id == id {
			return true
		}
	}
	return false
}

func (s *state) addRef(a acquired) {
	if s.hasRef(a.id) {
		return
	}
	s.refs = append(s.refs, a)
	slices.SortFunc(s.refs, func(x, y acquired) int { return int(x.id) - int(y.id) })
}

func (s *state) dropRef(id uint32) {
	s.refs = slices.DeleteFunc(s.refs, func(a acquired) bool { return a.id == id })
}

// eachReg calls f on every register and spilled slot of every frame.
func (s *state) eachReg(f func(r *reg)) {
	for _, fr := range s.frames {
		for i := range fr.regs {
			f(&fr.regs[i])
		}
		for i := range fr.stack {
			if fr.stack[i].spill.k != kNone {
				f(&fr.stack[i].spill)
			}
		}
	}
}

// unifyRefs matches the references s holds that old does not with those
// old holds that s does not, where both paths keep them in the same
// places: `n = c ? pop_back(h) : pop_front(h)` meets with a different
// reference on each path, held in the same register. A pair is unified
// when every register and spilled slot holds the one on the old path
// exactly where it holds the other on the new path, at least one does,
// and the values there are the same kind of owning reference (the
// kernel's regsafe matches reference ids the same way). s's reference is
// renamed to old's, in a copy; s itself is returned when nothing pairs.
func unifyRefs(old, s *state) *state {
	if len(old.frames) != len(s.frames) {
		return s
	}
	var out *state
	for _, r := range old.refs {
		if s.hasRef(r.id) {
			continue
		}
		for _, q := range s.refs {
			if old.hasRef(q.id) || q.what != r.what {
				continue
			}
			cur := s
			if out != nil {
				cur = out
			}
			if !sameRefPlaces(old, cur, r.id, q.id) {
				continue
			}
			if out == nil {
				out = s.clone()
			}
			out.renameRef(q.id, r)
			break
		}
	}
	if out == nil {
		return s
	}
	return out
}

// nullWhereHeld says whether other has the number 0 (NULL) in every
// register and spilled slot where holder keeps reference id, a pointer
// (and holder keeps it somewhere): the paths differ only in whether an
// acquire (a pop, a removal, an allocation) returned NULL.
func nullWhereHeld(holder, other *state, id uint32) bool {
	if len(holder.frames) != len(other.frames) {
		return false
	}
	n := 0
	ok := true
	for i, fh := range holder.frames {
		fo := other.frames[i]
		check := func(h, o reg) {
			if h.ref != id {
				return
			}
			n++
			if !h.k.isPtr() || !o.isConst() || o.off != 0 {
				ok = false
			}
		}
		for r := range fh.regs {
			check(fh.regs[r], fo.regs[r])
		}
		for k := range fh.stack {
			check(fh.stack[k].spill, fo.stack[k].spill)
		}
	}
	return ok && n > 0
}

// sameRefPlaces says whether a holds reference ra in exactly the
// registers and spilled slots where b holds rb (in at least one), as the
// same kind of owning reference.
func sameRefPlaces(a, b *state, ra, rb uint32) bool {
	n := 0
	same := func(x, y reg) bool {
		hx, hy := x.ref == ra, y.ref == rb
		if hx != hy {
			return false
		}
		if !hx {
			return true
		}
		n++
		return x.k == y.k && x.obj == y.obj && x.m == y.m && x.own && y.own && x.off == y.off && x.varOff == y.varOff
	}
	for i, fa := range a.frames {
		fb := b.frames[i]
		for r := range fa.regs {
			if !same(fa.regs[r], fb.regs[r]) {
				return false
			}
		}
		for k := range fa.stack {
			if !same(fa.stack[k].spill, fb.stack[k].spill) {
				return false
			}
		}
	}
	return n > 0
}

// renameRef makes reference from the reference to: its registers and
// slots, and its NULL-check identity, become to's.
func (s *state) renameRef(from uint32, to acquired) {
	s.dropRef(from)
	s.addRef(to)
	s.eachReg(func(x *reg) {
		if x.ref == from {
			x.ref = to.id
		}
		if x.id == from {
			x.id = to.id
		}
	})
}

// mergeConflict says why two states meeting at instruction at cannot be
// joined (a lock or a reference held on one path and not on the other):
// the message, its sentinel, and the instruction of the path that still
// holds it (the one to fix).
func mergeConflict(a, b *state, at int) (string, error, int) {
	if a.lock.held != b.lock.held {
		bad := a
		if !bad.lock.held {
			bad = b
		}
		return fmt.Sprintf("this path reaches insn %d with the bpf_spin_lock taken at insn %d held, another path unlocked it: unlock it on every path", at, bad.lock.at), ErrLockHeld, bad.from
	}
	if a.lock.m != b.lock.m || a.lock.obj != b.lock.obj {
		return fmt.Sprintf("this path reaches insn %d holding another bpf_spin_lock (taken at insn %d) than another path (insn %d)", at, b.lock.at, a.lock.at), ErrLock, b.from
	}
	for _, p := range [2][2]*state{{a, b}, {b, a}} {
		for _, r := range p[0].refs {
			if !slices.Contains(p[1].refs, r) && !nullWhereHeld(p[0], p[1], r.id) {
				return fmt.Sprintf("this path reaches insn %d without releasing the %s acquired at insn %d, another path released it: %s", at, r.what, r.at, releaseHint(r.what)), ErrRefLeak, p[0].from
			}
		}
	}
	return "", nil, 0
}

// join returns the least upper bound of old and s (same frames, lock and
// references), and whether it differs from old. At a loop head (widen) a
// bound that grew is dropped, so a loop counter's bound does not climb one
// iteration at a time.
func join(old, s *state, widen bool) (*state, bool) {
	changed := false
	out := old.clone()
	// A reference one path holds where the other has NULL (`rn != NULL`
	// computed with a branch) is held, maybe NULL, after the join: the
	// NULL check that follows releases it on its NULL branch.
	for _, r := range s.refs {
		if !out.hasRef(r.id) {
			out.addRef(r)
			changed = true
		}
	}
	if out.lock.id != s.lock.id && out.lock.id != 0 {
		// The same map's lock, taken on values from different lookups:
		// which value is no longer known.
		out.lock.id = 0
		changed = true
	}
	for i, f := range out.frames {
		g := s.frames[i]
		for r := range f.regs {
			j := joinReg(f.regs[r], g.regs[r])
			if widen {
				j = widenReg(f.regs[r], j)
			}
			if j != f.regs[r] {
				f.regs[r] = j
				changed = true
			}
		}
		for k := range f.stack {
			a, b := f.stack[k], g.stack[k]
			n := slot{init: a.init & b.init}
			if a.spill.k != kNone && b.spill.k != kNone {
				n.spill = joinReg(a.spill, b.spill)
				if widen {
					n.spill = widenReg(a.spill, n.spill)
				}
			}
			if n != a {
				f.stack[k] = n
				changed = true
			}
		}
	}
	return out, changed
}

// String formats the current frame's registers for the log.
func (s *state) String() string {
	var b strings.Builder
	f := s.cur()
	for i, r := range f.regs {
		if r.k == kNone {
			continue
		}
		fmt.Fprintf(&b, " R%d=%v", i, r)
	}
	for i := slotCount - 1; i >= 0; i-- {
		sl := f.stack[i]
		switch {
		case sl.spill.k != kNone:
			fmt.Fprintf(&b, " fp%d=%v", (i-slotCount)*8, sl.spill)
		case sl.init == 0xff:
			fmt.Fprintf(&b, " fp%d=data", (i-slotCount)*8)
		case sl.init != 0:
			fmt.Fprintf(&b, " fp%d=data(%08b)", (i-slotCount)*8, sl.init)
		}
	}
	if s.lock.held {
		fmt.Fprintf(&b, " locked(insn %d)", s.lock.at)
	}
	for _, a := range s.refs {
		fmt.Fprintf(&b, " ref%d(insn %d)", a.id, a.at)
	}
	if len(s.frames) > 1 {
		fmt.Fprintf(&b, " frame=%d", len(s.frames)-1)
	}
	return b.String()
}

// widenReg drops j's bound if it is looser than old's.
func widenReg(old, j reg) reg {
	if !j.bounded {
		return j
	}
	ob, ok := old.bound()
	if old.k != kScalar {
		ob, ok = old.umax, old.bounded || !old.varOff
	}
	if !ok || j.umax > ob {
		j.bounded, j.umax = false, 0
	}
	return j
}
