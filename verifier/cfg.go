package verifier

import (
	"errors"
	"fmt"
	"slices"

	"github.com/userbpf/userbpf/internal/isa"
	"github.com/userbpf/userbpf/vm"
)

// cfg is the control-flow graph of a program.
type cfg struct {
	n        int
	half     []bool  // second half of an LD_IMM64
	succ     [][]int // successors inside the function (calls fall through)
	preds    []int   // number of predecessors
	loopHead []bool  // target of a backward jump
	entries  []int   // function entries, sorted; entries[0] == 0
	fn       []int   // fn[i]: index in entries of the function holding insn i
	callees  [][]int // callees[f]: functions f calls or passes as callbacks
}

// isJump says whether ins is in a jump class.
func isJump(ins vm.Insn) bool {
	c := ins.Op & 7
	return c == isa.ClassJMP || c == isa.ClassJMP32
}

// buildCFG checks the program's structure: jumps and calls land on
// instructions of the program (not in the middle of an LD_IMM64), no
// function falls off its end or jumps into another, every instruction is
// reachable, no call is recursive and calls nest at most vm.MaxCallDepth
// frames deep.
func (v *verifier) buildCFG() error {
	insns := v.p.Insns
	n := len(insns)
	g := &cfg{n: n, half: make([]bool, n), succ: make([][]int, n), preds: make([]int, n), loopHead: make([]bool, n)}
	v.cfg = g
	if n == 0 {
		return v.errAt(0, ErrInvalidInsn, "the program has no instructions")
	}
	for i := 0; i < n; i++ {
		if insns[i].Op == isa.OpLdImm64 {
			if i+1 >= n {
				return v.errAt(i, ErrInvalidInsn, "64-bit immediate load without its second half")
			}
			g.half[i+1] = true
			i++
		}
	}
	target := func(from int, t int64, what string) error {
		if t < 0 || t >= int64(n) {
			return v.errAt(from, ErrBadJump, fmt.Sprintf("%s to insn %d, outside the program (%d insns)", what, t, n))
		}
		if g.half[t] {
			return v.errAt(from, ErrBadJump, fmt.Sprintf("%s to insn %d, the middle of the 64-bit immediate load at insn %d", what, t, t-1))
		}
		return nil
	}
	entrySet := map[int]bool{0: true}
	for i := 0; i < n; i++ {
		if g.half[i] {
			continue
		}
		ins := insns[i]
		switch {
		case ins.Op == isa.OpCall && ins.Src == vm.CallLocal, ins.Op == isa.OpLdImm64 && ins.Src == vm.PseudoFunc:
			t := int64(i) + 1 + int64(ins.Imm)
			what := "call"
			if ins.Op == isa.OpLdImm64 {
				what = "callback reference"
			}
			if err := target(i, t, what); err != nil {
				return err
			}
			entrySet[int(t)] = true
		}
	}
	for e := range v.p.Funcs {
		if e >= 0 && e < n && !g.half[e] {
			entrySet[e] = true
		}
	}
	for e := range entrySet {
		g.entries = append(g.entries, e)
	}
	slices.Sort(g.entries)
	g.fn = make([]int, n)
	for f, e := range g.entries {
		end := n
		if f+1 < len(g.entries) {
			end = g.entries[f+1]
		}
		for i := e; i < end; i++ {
			g.fn[i] = f
		}
	}
	g.callees = make([][]int, len(g.entries))
	for i := 0; i < n; i++ {
		if g.half[i] {
			continue
		}
		ins := insns[i]
		next := i + 1
		if ins.Op == isa.OpLdImm64 {
			next = i + 2
		}
		var succ []int
		switch {
		case !isJump(ins):
			succ = []int{next}
		case ins.Op&0xf0 == isa.JmpEXIT:
			succ = nil
		case ins.Op&0xf0 == isa.JmpCALL:
			succ = []int{next}
			if ins.Op == isa.OpCall && ins.Src == vm.CallLocal {
				t := i + 1 + int(ins.Imm)
				g.callees[g.fn[i]] = append(g.callees[g.fn[i]], g.fn[t])
			}
		case ins.Op&0xf0 == isa.JmpJA:
			off := int64(ins.Off)
			if ins.Op&7 == isa.ClassJMP32 {
				off = int64(ins.Imm)
			}
			t := int64(i) + 1 + off
			if err := target(i, t, "jump"); err != nil {
				return err
			}
			succ = []int{int(t)}
		default:
			t := int64(i) + 1 + int64(ins.Off)
			if err := target(i, t, "jump"); err != nil {
				return err
			}
			succ = []int{next, int(t)}
		}
		if ins.Op == isa.OpLdImm64 && ins.Src == vm.PseudoFunc {
			t := i + 1 + int(ins.Imm)
			g.callees[g.fn[i]] = append(g.callees[g.fn[i]], g.fn[t])
		}
		for _, s := range succ {
			if s >= n {
				return v.errAt(i, ErrBadJump, "execution falls off the end of the program: the last instruction must be an exit or a jump")
			}
			if g.fn[s] != g.fn[i] {
				if s == next && ins.Op&0xf0 != isa.JmpJA {
					return v.errAt(i, ErrBadJump, fmt.Sprintf("execution falls through into the function at insn %d: a function must end with an exit or a jump", s))
				}
				return v.errAt(i, ErrBadJump, fmt.Sprintf("jump to insn %d, in another function (at insn %d)", s, g.entries[g.fn[s]]))
			}
			g.preds[s]++
			if s <= i {
				g.loopHead[s] = true
			}
		}
		g.succ[i] = succ
	}
	if err := v.checkOpcodes(); err != nil {
		return err
	}
	if err := v.checkReachable(); err != nil {
		return err
	}
	return v.checkCallGraph()
}

// checkOpcodes rejects what the interpreter would refuse to run: unknown
// opcodes, reserved fields, register numbers, writes to R10.
func (v *verifier) checkOpcodes() error {
	vp := &vm.Program{Name: v.p.Name, Insns: v.p.Insns, Maps: make([]vm.MapRef, len(v.p.Maps))}
	for i, m := range v.p.Maps {
		if m != nil {
			vp.Maps[i] = vm.MapRef{ValueAddr: 1, ValueSize: m.ValueSize}
		}
	}
	err := vm.Validate(vp)
	var ve *vm.Error
	if errors.As(err, &ve) {
		return v.errAt(ve.PC, ErrInvalidInsn, ve.Detail)
	}
	return err
}

// checkReachable walks the graph from the entry, through calls and
// callback references, and rejects the first instruction not reached.
func (v *verifier) checkReachable() error {
	g := v.cfg
	seen := make([]bool, g.n)
	work := []int{0}
	seen[0] = true
	push := func(t int) {
		if !seen[t] {
			seen[t] = true
			work = append(work, t)
		}
	}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		for _, s := range g.succ[i] {
			push(s)
		}
		ins := v.p.Insns[i]
		if (ins.Op == isa.OpCall && ins.Src == vm.CallLocal) || (ins.Op == isa.OpLdImm64 && ins.Src == vm.PseudoFunc) {
			push(i + 1 + int(ins.Imm))
		}
	}
	for i := range seen {
		if !seen[i] && !g.half[i] {
			return v.errAt(i, ErrUnreachable, "no path from the program's entry reaches this instruction")
		}
	}
	return nil
}

// checkCallGraph rejects recursion and call chains deeper than
// vm.MaxCallDepth frames.
func (v *verifier) checkCallGraph() error {
	g := v.cfg
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(g.entries))
	depth := make([]int, len(g.entries)) // frames needed from f down
	var visit func(f int) error
	visit = func(f int) error {
		color[f] = grey
		d := 1
		for _, c := range g.callees[f] {
			switch color[c] {
			case grey:
				return v.errAt(g.entries[f], ErrBadCall, fmt.Sprintf("recursive call: %s reaches itself", v.funcName(g.entries[c])))
			case white:
				if err := visit(c); err != nil {
					return err
				}
			}
			d = max(d, 1+depth[c])
		}
		depth[f] = d
		color[f] = black
		return nil
	}
	if err := visit(0); err != nil {
		return err
	}
	if depth[0] > vm.MaxCallDepth {
		return v.errAt(0, ErrCallDepth, fmt.Sprintf("calls nest %d frames deep, more than %d", depth[0], vm.MaxCallDepth))
	}
	return nil
}

// funcName names the function entered at insn e.
func (v *verifier) funcName(e int) string {
	if f, ok := v.p.Funcs[e]; ok && f.Name != "" {
		return f.Name
	}
	if e == 0 {
		return "the program"
	}
	return fmt.Sprintf("the function at insn %d", e)
}
