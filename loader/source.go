package loader

import (
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/verifier"
)

// recordSource keeps what the object's BTF says about instruction ins (raw
// index at): the source line it starts and the function it enters, for
// the verifier's messages and rules.
func recordSource(out *ProgramSpec, ins *asm.Instruction, at int) {
	if l, ok := ins.Source().(*btf.Line); ok && l != nil {
		for len(out.Lines) <= at {
			out.Lines = append(out.Lines, verifier.Line{})
		}
		out.Lines[at] = verifier.Line{File: filepath.Base(l.FileName()), Num: int(l.LineNumber()), Text: strings.TrimSpace(l.Line())}
	}
	if fn := btf.FuncMetadata(ins); fn != nil {
		out.Funcs[at] = verifier.Func{Name: fn.Name, Global: fn.Linkage == btf.GlobalFunc}
	}
}
