package vm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/asm"
	"github.com/userbpf/userbpf/internal/isa"
)

// String disassembles the instruction in cilium/ebpf's notation. For a
// 64-bit immediate load only the low half of the constant is known to a
// single Insn; Disassemble shows whole loads.
func (i Insn) String() string {
	var ins asm.Instruction
	if err := ins.Unmarshal(bytes.NewReader(Encode([]Insn{i, {}})), binary.LittleEndian, "linux"); err != nil {
		return fmt.Sprintf("op %#02x dst r%d src r%d off %d imm %d", i.Op, i.Dst, i.Src, i.Off, i.Imm)
	}
	return fmt.Sprint(ins)
}

// Disassemble returns one line per instruction, each prefixed with its
// index (a 64-bit immediate load takes one line and two indexes).
func Disassemble(insns []Insn) string {
	var b strings.Builder
	for i := 0; i < len(insns); i++ {
		var ins asm.Instruction
		raw := Encode(insns[i:min(i+2, len(insns))])
		if err := ins.Unmarshal(bytes.NewReader(raw), binary.LittleEndian, "linux"); err != nil {
			fmt.Fprintf(&b, "%5d: %v\n", i, insns[i])
			continue
		}
		fmt.Fprintf(&b, "%5d: %v\n", i, ins)
		if insns[i].Op == isa.OpLdImm64 {
			i++
		}
	}
	return b.String()
}
