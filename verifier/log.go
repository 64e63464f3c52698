package verifier

import (
	"fmt"

	"github.com/userbpf/userbpf/internal/isa"
	"github.com/userbpf/userbpf/vm"
)

// trace writes one line of the log: the instruction, its source line
// when it starts one, and the registers after it (or the error).
func (v *verifier) trace(pc int, st *state, err error) {
	if pc < len(v.p.Lines) && v.p.Lines[pc].Num != 0 {
		l := v.p.Lines[pc]
		fmt.Fprintf(v.log, "; %s:%d: %s\n", l.File, l.Num, l.Text)
	}
	ins := v.p.Insns[pc]
	text := ins.String()
	if ins.Op == isa.OpLdImm64 && pc+1 < len(v.p.Insns) {
		text = vm.Disassemble(v.p.Insns[pc : pc+2])
		text = text[len(fmt.Sprintf("%5d: ", 0)) : len(text)-1]
	}
	if err != nil {
		fmt.Fprintf(v.log, "%d: %s\n  error: %v\n", pc, text, err)
		return
	}
	fmt.Fprintf(v.log, "%d: %s ;%s\n", pc, text, st)
}
