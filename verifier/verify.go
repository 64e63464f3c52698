package verifier

import (
	"fmt"
	"io"

	"github.com/userbpf/userbpf/internal/isa"
)

// Options tune verification. The zero value is valid.
type Options struct {
	// Log, if set, receives the full trace: every instruction the
	// analysis processes, with the registers and stack after it.
	Log io.Writer
}

// maxSteps bounds the instructions the analysis processes (the kernel's
// BPF_COMPLEXITY_LIMIT_INSNS).
const maxSteps = 1_000_000

// maxContexts bounds the distinct call contexts (call paths) analysed.
const maxContexts = 10_000

// Verify checks p. It returns nil, or an *Error for the first problem
// found.
func Verify(p *Program, opts *Options) (err error) {
	if opts == nil {
		opts = &Options{}
	}
	v := &verifier{p: p, log: opts.Log}
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Program: p.Name, Err: ErrTooComplex, Msg: fmt.Sprintf("internal verifier error: %v", r)}
		}
	}()
	return v.run()
}

// verifier is one verification.
type verifier struct {
	p   *Program
	log io.Writer
	cfg *cfg

	ctxs   []ctxKey         // call contexts: ctxs[0] is the program's own
	ctxIdx map[ctxKey]int   // context → index
	states []map[int]*state // per context: state at each merge point
	ids    map[[2]int]uint32
	work   []cont
	steps  int

	tooComplex bool // set when a limit was hit; walk reports it
}

// ctxKey is a call context: the context of the caller and the call (or
// callback-taking helper) instruction.
type ctxKey struct{ parent, site int }

// cont is a state to continue from: instruction pc in context ctx.
type cont struct {
	ctx, pc int
	st      *state
}

func (v *verifier) run() error {
	if err := v.buildCFG(); err != nil {
		return err
	}
	v.ctxs = []ctxKey{{-1, -1}}
	v.ctxIdx = map[ctxKey]int{}
	v.states = []map[int]*state{{}}
	v.ids = map[[2]int]uint32{}
	st := &state{frames: []*frame{{ret: -1}}}
	f := st.cur()
	f.regs[1] = reg{k: kCtx}
	f.regs[10] = reg{k: kStack}
	v.work = append(v.work, cont{0, 0, st})
	for len(v.work) > 0 {
		c := v.work[len(v.work)-1]
		v.work = v.work[:len(v.work)-1]
		if err := v.walk(c); err != nil {
			return err
		}
	}
	return nil
}

// ctxOf returns the context a call at site in context parent runs in.
func (v *verifier) ctxOf(parent, site int) int {
	k := ctxKey{parent, site}
	if i, ok := v.ctxIdx[k]; ok {
		return i
	}
	if len(v.ctxs) >= maxContexts {
		v.tooComplex = true
	}
	v.ctxs = append(v.ctxs, k)
	v.states = append(v.states, map[int]*state{})
	v.ctxIdx[k] = len(v.ctxs) - 1
	return len(v.ctxs) - 1
}

// idOf returns the identity of what instruction pc produces in context
// ctx (a lookup result, an allocation): the same on every visit, so the
// analysis reaches a fixpoint.
func (v *verifier) idOf(ctx, pc int) uint32 {
	k := [2]int{ctx, pc}
	if id, ok := v.ids[k]; ok {
		return id
	}
	id := uint32(len(v.ids) + 1)
	v.ids[k] = id
	return id
}

// isMerge says whether states from several paths meet at pc.
func (v *verifier) isMerge(pc int) bool {
	return v.cfg.preds[pc] > 1 || v.cfg.entries[v.cfg.fn[pc]] == pc
}

// walk follows one path from c until it ends or meets a state already
// seen; branches it does not follow go on the work list.
func (v *verifier) walk(c cont) error {
	ctx, pc, st := c.ctx, c.pc, c.st
	for {
		if v.isMerge(pc) {
			old := v.states[ctx][pc]
			if old != nil {
				st = unifyRefs(old, st)
				if msg, sentinel, from := mergeConflict(old, st, pc); msg != "" {
					return v.errAt(from, sentinel, msg)
				}
				j, changed := join(old, st, v.cfg.loopHead[pc] || v.cfg.entries[v.cfg.fn[pc]] == pc)
				if !changed {
					return nil
				}
				st = j
			}
			v.states[ctx][pc] = st
			st = st.clone()
		}
		v.steps++
		if v.tooComplex {
			return v.errAt(pc, ErrTooComplex, fmt.Sprintf("more than %d call paths", maxContexts))
		}
		if v.steps > maxSteps {
			return v.errAt(pc, ErrTooComplex, fmt.Sprintf("the registers of a loop around here never settle (%d instructions analysed): "+
				"give its counter a constant bound (i < N, or a mask) so that each pass proves the same facts", maxSteps))
		}
		st.from = pc
		next, err := v.step(ctx, pc, st)
		if v.log != nil {
			v.trace(pc, st, err)
		}
		if err != nil {
			return err
		}
		if len(next) == 0 {
			return nil
		}
		v.work = append(v.work, next[1:]...)
		ctx, pc, st = next[0].ctx, next[0].pc, next[0].st
	}
}

// step interprets the instruction at pc on st (which it may change) and
// returns the states that follow it.
func (v *verifier) step(ctx, pc int, st *state) ([]cont, error) {
	ins := v.p.Insns[pc]
	switch ins.Op & 7 {
	case isa.ClassALU, isa.ClassALU64:
		if err := v.alu(pc, ins, st); err != nil {
			return nil, err
		}
	case isa.ClassLD:
		if ins.Op == isa.OpLdImm64 {
			if err := v.ldImm64(ctx, pc, ins, st); err != nil {
				return nil, err
			}
			return []cont{{ctx, pc + 2, st}}, nil
		}
		if err := v.ldAbs(pc, ins, st); err != nil {
			return nil, err
		}
	case isa.ClassLDX:
		if err := v.ldx(pc, ins, st); err != nil {
			return nil, err
		}
	case isa.ClassST, isa.ClassSTX:
		if err := v.store(pc, ins, st); err != nil {
			return nil, err
		}
	case isa.ClassJMP, isa.ClassJMP32:
		return v.jump(ctx, pc, ins, st)
	}
	return []cont{{ctx, pc + 1, st}}, nil
}

// errAt builds the *Error for instruction pc.
func (v *verifier) errAt(pc int, sentinel error, msg string) error {
	e := &Error{Program: v.p.Name, Insn: pc, Err: sentinel, Msg: msg}
	e.Line = v.lineOf(pc)
	return e
}

// lineOf is the source line of pc: the last line info at or before it
// (line info marks where a line's code starts).
func (v *verifier) lineOf(pc int) Line {
	if pc < 0 {
		return Line{}
	}
	for i := min(pc, len(v.p.Lines)-1); i >= 0; i-- {
		if v.p.Lines[i].Num != 0 {
			return v.p.Lines[i]
		}
	}
	return Line{}
}

// readReg checks that register r is initialised and returns it.
func (v *verifier) readReg(pc int, st *state, r uint8) (reg, error) {
	if r > 10 {
		return reg{}, v.errAt(pc, ErrInvalidInsn, fmt.Sprintf("register R%d does not exist", r))
	}
	x := st.cur().regs[r]
	switch x.k {
	case kNone:
		if r >= 1 && r <= 5 && pc > 0 {
			return x, v.errAt(pc, ErrUninitReg, fmt.Sprintf("R%d is read before it is written (calls clobber R1-R5)", r))
		}
		return x, v.errAt(pc, ErrUninitReg, fmt.Sprintf("R%d is read before it is written", r))
	case kMixed:
		// Reading a value of different kinds is fine for moves and
		// spills; uses that need a kind report it.
	}
	return x, nil
}

// setReg writes register r.
func (v *verifier) setReg(pc int, st *state, r uint8, x reg) error {
	if r >= 10 {
		return v.errAt(pc, ErrInvalidInsn, fmt.Sprintf("R%d cannot be written", r))
	}
	st.cur().regs[r] = x
	return nil
}

// clobberCallerSaved marks R1-R5 unreadable after a call.
func clobberCallerSaved(f *frame) {
	for r := 1; r <= 5; r++ {
		f.regs[r] = reg{}
	}
}
