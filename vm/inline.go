package vm

import "github.com/userbpf/userbpf/internal/isa"

// ArrayLayout describes a plain ARRAY map's values for lookups the VM
// inlines, as the kernel's verifier inlines bpf_map_lookup_elem on arrays
// (map_gen_lookup): value i is at First + i×Stride, for i < Len, and the
// program may touch ValueSize bytes of it (write them unless ReadOnly).
// The memory must stay mapped while the program may run.
type ArrayLayout struct {
	First     uintptr
	Stride    uint32
	Len       uint32
	ValueSize uint32
	ReadOnly  bool
}

// inlineArrayLookups replaces each bpf_map_lookup_elem call whose R1 is
// certainly an ARRAY map with a layout (the map load is the last write to
// R1 in the call's basic block, nothing jumps in between) by
// opCallArrayLookup, which computes the value's address without a helper
// call. The map index goes in imm.
func inlineArrayLookups(c *code, p *Program) {
	if !hasArrayLayouts(p) {
		return
	}
	targets := jumpTargets(p.Insns)
	for i, x := range c.insns[:len(p.Insns)] {
		if x.op != opCallHelper || x.imm != FnMapLookupElem || targets[i] {
			continue
		}
		if idx, ok := arrayInR1(c, p, targets, i); ok {
			c.insns[i] = xinsn{op: opCallArrayLookup, imm: int32(idx)}
		}
	}
}

func hasArrayLayouts(p *Program) bool {
	for i := range p.Maps {
		if p.Maps[i].Array != nil {
			return true
		}
	}
	return false
}

// arrayInR1 walks back from the call at i to the last write to R1 and
// reports the map it loads, if that write is a PseudoMapFD load of a map
// with a layout. Anything else that might write R1, and any jump target
// on the way, ends the search without an answer.
func arrayInR1(c *code, p *Program, targets []bool, i int) (int, bool) {
	for j := i - 1; j >= 0; j-- {
		if c.insns[j].op == opLdImm64Hi {
			continue // the second half of a 64-bit load; its first half is next
		}
		ins := p.Insns[j]
		class := ins.Op & 7
		switch {
		case ins.Op == isa.OpLdImm64 && ins.Dst == 1:
			if ins.Src != PseudoMapFD || ins.Imm < 0 || int(ins.Imm) >= len(p.Maps) || p.Maps[ins.Imm].Array == nil {
				return 0, false
			}
			return int(ins.Imm), true
		case class == isa.ClassLD: // LD_ABS/LD_IND clobber R1-R5; other 64-bit loads name their register
			if ins.Op != isa.OpLdImm64 {
				return 0, false
			}
		case class == isa.ClassLDX || class == isa.ClassALU || class == isa.ClassALU64:
			if ins.Dst == 1 {
				return 0, false
			}
		case class == isa.ClassSTX && ins.Op&0xe0 == isa.ModeATOMIC:
			if ins.Src == 1 || ins.Dst == 1 {
				return 0, false // a fetching atomic writes its source register
			}
		case class == isa.ClassJMP || class == isa.ClassJMP32:
			return 0, false // calls clobber R1; a jump ends the block
		}
		if targets[j] {
			return 0, false // another path enters here
		}
	}
	return 0, false
}

// callbackEntries marks the instructions PseudoFunc loads name: callbacks
// start there and nowhere else.
func callbackEntries(insns []Insn) []bool {
	cb := make([]bool, len(insns)+1)
	for i, ins := range insns {
		if ins.Op == isa.OpLdImm64 && ins.Src == PseudoFunc {
			if to := i + 1 + int(ins.Imm); to >= 0 && to < len(insns) {
				cb[to] = true
			}
		}
	}
	return cb
}

// jumpTargets marks every instruction a jump, call or callback reference
// may reach other than by falling through.
func jumpTargets(insns []Insn) []bool {
	t := make([]bool, len(insns)+1)
	mark := func(to int) {
		if to >= 0 && to < len(t) {
			t[to] = true
		}
	}
	for i, ins := range insns {
		class, op := ins.Op&7, ins.Op&0xf0
		switch {
		case ins.Op == isa.OpLdImm64 && ins.Src == PseudoFunc:
			mark(i + 1 + int(ins.Imm))
		case class != isa.ClassJMP && class != isa.ClassJMP32, op == isa.JmpEXIT:
		case op == isa.JmpCALL:
			if ins.Src == CallLocal {
				mark(i + 1 + int(ins.Imm))
			}
		case class == isa.ClassJMP32 && op == isa.JmpJA:
			mark(i + 1 + int(ins.Imm))
		default:
			mark(i + 1 + int(ins.Off))
		}
	}
	return t
}
