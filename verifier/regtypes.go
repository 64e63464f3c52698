package verifier

import (
	"fmt"
	"strings"
)

// kind is the abstract type of a register or spilled stack slot.
type kind uint8

const (
	kNone     kind = iota // not initialised
	kScalar               // a number (off holds it when known)
	kCtx                  // the program's context (R1 at entry)
	kStack                // a frame's stack: frame, off from its top (R10)
	kMapPtr               // a map reference (m)
	kMapValue             // a value of map m (+off, or varOff)
	kMapKey               // a key of map m (callback argument, read-only)
	kMem                  // size bytes of memory: a ring-buffer record, dynptr data
	kFunc                 // a subprogram (off: its entry), for callbacks
	kObj                  // an allocated object of type obj (+off)
	kDynptr               // a struct bpf_dynptr (callback argument)
	kMixed                // different kinds on different paths
	kGone                 // a non-owning reference invalidated at insn off
	kPkt                  // packet data (+off): __sk_buff/xdp_md data
	kPktEnd               // the end of packet data: data_end
	kPktMeta              // packet metadata (+off): data_meta
)

var kindNames = [...]string{
	kNone: "not initialised", kScalar: "scalar", kCtx: "ctx", kStack: "fp",
	kMapPtr: "map_ptr", kMapValue: "map_value", kMapKey: "map_key", kMem: "mem",
	kFunc: "func", kObj: "ptr_to_obj", kDynptr: "dynptr", kMixed: "a different kind on each path",
	kGone: "an invalidated reference", kPkt: "pkt", kPktEnd: "pkt_end", kPktMeta: "pkt_meta",
}

func (k kind) String() string { return kindNames[k] }

// isPtr says whether values of kind k point to memory a program may load
// from or store to.
func (k kind) isPtr() bool {
	switch k {
	case kCtx, kStack, kMapValue, kMapKey, kMem, kObj, kPkt, kPktMeta:
		return true
	}
	return false
}

// reg is the abstract value of a register or spilled stack slot. It is
// comparable: two regs are the same abstract value iff ==.
type reg struct {
	k      kind
	null   bool // may be NULL (a lookup or allocation result not yet checked)
	varOff bool // a variable was added: off is only the constant part
	known  bool // kScalar: off is the value
	// bounded: umax is an upper bound (unsigned) of a scalar, or of the
	// variable part of a pointer's offset (varOff).
	bounded bool
	umax    uint64
	own     bool // kObj: an owning reference (must be released)
	ro      bool // kMem: read-only
	frame   uint8
	off     int64  // pointer offset, scalar value, kFunc entry, kGone insn
	size    int64  // kMem: bytes
	id      uint32 // NULL-check identity; the value instance for locks
	ref     uint32 // the acquired reference this register holds (0: none)
	m       *Map
	obj     *ObjType
}

func scalar() reg           { return reg{k: kScalar} }
func atMost(max uint64) reg { return reg{k: kScalar, bounded: true, umax: max} }

// bound is an unsigned upper bound of a scalar, if one is known.
func (r reg) bound() (uint64, bool) {
	switch {
	case r.k != kScalar:
		return 0, false
	case r.known:
		return uint64(r.off), true
	case r.bounded:
		return r.umax, true
	}
	return 0, false
}
func constant(v int64) reg  { return reg{k: kScalar, known: true, off: v} }
func (r reg) isConst() bool { return r.k == kScalar && r.known }

// joinReg is the least upper bound of two abstract values.
func joinReg(a, b reg) reg {
	if a == b {
		return a
	}
	if a.k == kNone || b.k == kNone {
		return reg{}
	}
	if a.k == kGone || b.k == kGone {
		if a.k == kGone {
			return a
		}
		return b
	}
	if a.k != b.k {
		// A NULL constant on one path and a pointer on the other is the
		// pointer or NULL (as after `p = cond ? lookup() : NULL`).
		if a.k == kScalar && a.known && a.off == 0 && b.k.isPtr() {
			b.null = true
			return b
		}
		if b.k == kScalar && b.known && b.off == 0 && a.k.isPtr() {
			a.null = true
			return a
		}
		return reg{k: kMixed}
	}
	switch a.k {
	case kScalar:
		ab, aok := a.bound()
		bb, bok := b.bound()
		if aok && bok {
			return atMost(max(ab, bb))
		}
		return scalar()
	case kFunc:
		if a.off != b.off {
			return reg{k: kMixed}
		}
	}
	if a.m != b.m || a.obj != b.obj || a.frame != b.frame || a.own != b.own || a.ref != b.ref {
		return reg{k: kMixed}
	}
	r := a
	r.null = a.null || b.null
	r.ro = a.ro || b.ro
	if a.id != b.id {
		r.id = 0
	}
	if a.size != b.size {
		r.size = min(a.size, b.size)
	}
	if a.off != b.off || a.varOff || b.varOff {
		r.varOff = true
		r.off = min(a.off, b.off)
		// The variable part spans both: [min off, max off + max var].
		hi := func(x reg) (uint64, bool) {
			if !x.varOff {
				return uint64(x.off - r.off), true
			}
			return uint64(x.off-r.off) + x.umax, x.bounded
		}
		ah, aok := hi(a)
		bh, bok := hi(b)
		r.bounded, r.umax = aok && bok, max(ah, bh)
		if !r.bounded {
			// Without a bound neither umax nor the constant part is ever
			// read (every check of an unbounded variable offset is left to
			// run time or refused outright). Keeping them would make a
			// pointer stepped in a loop (p += 8, p -= 8) look different on
			// every iteration, and the analysis would never reach a
			// fixpoint.
			r.umax, r.off = 0, 0
		}
	}
	return r
}

// String formats the value as the log shows it.
func (r reg) String() string {
	var b strings.Builder
	switch r.k {
	case kScalar:
		if r.known {
			return fmt.Sprint(r.off)
		}
		if r.bounded {
			return fmt.Sprintf("scalar(<=%d)", r.umax)
		}
		return "scalar"
	case kNone:
		return "?"
	case kFunc:
		return fmt.Sprintf("func@%d", r.off)
	case kGone:
		return fmt.Sprintf("invalid(insn %d)", r.off)
	}
	b.WriteString(r.typeName())
	switch r.k {
	case kStack:
		if r.frame > 0 {
			fmt.Fprintf(&b, "%d", r.frame)
		}
	case kMapPtr, kMapValue, kMapKey:
		if r.m != nil {
			fmt.Fprintf(&b, "(%s)", r.m.Name)
		}
	case kObj:
		if r.obj != nil {
			fmt.Fprintf(&b, "(%s)", r.obj.Name)
		}
	case kMem:
		fmt.Fprintf(&b, "(%d)", r.size)
	}
	if r.k.isPtr() && (r.off != 0 || r.varOff) {
		if r.varOff && r.bounded {
			fmt.Fprintf(&b, "%+d+var(<=%d)", r.off, r.umax)
		} else if r.varOff {
			fmt.Fprintf(&b, "%+d+var", r.off)
		} else {
			fmt.Fprintf(&b, "%+d", r.off)
		}
	}
	if r.id != 0 {
		fmt.Fprintf(&b, " id=%d", r.id)
	}
	if r.ref != 0 {
		fmt.Fprintf(&b, " ref=%d", r.ref)
	}
	return b.String()
}

// typeName is the kernel-like name of the value's type: map_value,
// map_value_or_null, ptr_to_obj_or_null, non_own_obj…
func (r reg) typeName() string {
	n := r.k.String()
	if r.k == kObj && !r.own {
		n = "non_own_obj"
	}
	if r.null {
		n += "_or_null"
	}
	return n
}
