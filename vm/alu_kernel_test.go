package vm

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// Edge values for 64-bit operands: zero, small, shift widths, every sign
// boundary of 8, 16, 32 and 64 bits, and patterned bit strings.
var vals64 = []uint64{
	0, 1, 2, 3, 5, 7, 8, 13, 31, 32, 33, 63, 64, 65, 127,
	0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
	0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0x1_0000_0001,
	0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000001,
	0xffffffffffffffff, 0xfffffffffffffffe, 0xfffffffffffffff9, // -1 -2 -7
	0xffffffff80000000, 0xffffffff7fffffff, 0xffffffffffff8000,
	0x123456789abcdef0, 0xfedcba9876543210, 0x00000000deadbeef, 0xdeadbeef00000000,
}

// Edge values for 32-bit immediates.
var imms = []int32{
	0, 1, 2, 3, 7, 13, 31, 32, 33, 63, 64, 0x7f, 0x80, 0xff, 0x8000, 0xffff,
	0x7fffffff, -0x80000000, -1, -2, -7, -32768, 0x12345678, -0x12345678,
}

type aluVariant struct {
	name string
	op   asm.ALUOp
	is32 bool
	reg  bool
}

func aluVariants() []aluVariant {
	ops := []struct {
		name string
		op   asm.ALUOp
	}{
		{"add", asm.Add}, {"sub", asm.Sub}, {"mul", asm.Mul}, {"div", asm.Div}, {"sdiv", asm.SDiv},
		{"mod", asm.Mod}, {"smod", asm.SMod}, {"or", asm.Or}, {"and", asm.And}, {"lsh", asm.LSh},
		{"rsh", asm.RSh}, {"arsh", asm.ArSh}, {"xor", asm.Xor}, {"mov", asm.Mov},
	}
	var vs []aluVariant
	for _, o := range ops {
		for _, is32 := range []bool{false, true} {
			for _, reg := range []bool{false, true} {
				vs = append(vs, aluVariant{o.name, o.op, is32, reg})
			}
		}
	}
	return vs
}

func (v aluVariant) String() string {
	w, s := "64", "imm"
	if v.is32 {
		w = "32"
	}
	if v.reg {
		s = "reg"
	}
	return fmt.Sprintf("%s%s_%s", v.name, w, s)
}

func (v aluVariant) insn(b int32) asm.Instruction {
	switch {
	case v.is32 && v.reg:
		return v.op.Reg32(asm.R1, asm.R2)
	case v.is32:
		return v.op.Imm32(asm.R1, b)
	case v.reg:
		return v.op.Reg(asm.R1, asm.R2)
	}
	return v.op.Imm(asm.R1, b)
}

// TestKernelALU compares every ALU and ALU32 operation, with register and
// immediate sources, over all pairs of edge values.
func TestKernelALU(t *testing.T) {
	total := 0
	for _, v := range aluVariants() {
		t.Run(v.String(), func(t *testing.T) {
			var probes []probe
			width := int32(64)
			if v.is32 {
				width = 32
			}
			for _, a := range vals64 {
				if v.reg {
					for _, b := range vals64 {
						probes = append(probes, probe{
							name: fmt.Sprintf("%v(%#x, %#x)", v, a, b), in: []uint64{a, b},
							insns: asm.Instructions{v.insn(0)}, out: []asm.Register{asm.R1},
						})
					}
					continue
				}
				for _, b := range imms {
					shift := v.op == asm.LSh || v.op == asm.RSh || v.op == asm.ArSh
					if shift && (b < 0 || b >= width) {
						continue // the verifier rejects constant shifts out of range
					}
					if b == 0 && (v.op == asm.Div || v.op == asm.SDiv || v.op == asm.Mod || v.op == asm.SMod) {
						continue // and division by a constant zero
					}
					probes = append(probes, probe{
						name: fmt.Sprintf("%v(%#x, %d)", v, a, b), in: []uint64{a},
						insns: asm.Instructions{v.insn(b)}, out: []asm.Register{asm.R1},
					})
				}
			}
			total += diff(t, probes)
		})
	}
	t.Logf("%d ALU results compared with the kernel", total)
}

// TestKernelALUUnary covers neg, movsx, and byte swaps.
func TestKernelALUUnary(t *testing.T) {
	type un struct {
		name string
		ins  asm.Instruction
	}
	ops := []un{
		{"neg64", asm.Neg.Imm(asm.R1, 0)},
		{"neg32", asm.Neg.Imm32(asm.R1, 0)},
		{"movsx64_8", asm.MovSX8.Reg(asm.R1, asm.R2)},
		{"movsx64_16", asm.MovSX16.Reg(asm.R1, asm.R2)},
		{"movsx64_32", asm.MovSX32.Reg(asm.R1, asm.R2)},
		{"movsx32_8", asm.MovSX8.Reg32(asm.R1, asm.R2)},
		{"movsx32_16", asm.MovSX16.Reg32(asm.R1, asm.R2)},
		{"mov32_self", asm.Mov.Reg32(asm.R1, asm.R1)},
	}
	for _, e := range []asm.Endianness{asm.LE, asm.BE} {
		for _, s := range []asm.Size{asm.Half, asm.Word, asm.DWord} {
			ops = append(ops, un{fmt.Sprintf("to%v%d", e, s.Sizeof()*8), asm.HostTo(e, asm.R1, s)})
		}
	}
	for _, s := range []asm.Size{asm.Half, asm.Word, asm.DWord} {
		ops = append(ops, un{fmt.Sprintf("bswap%d", s.Sizeof()*8), asm.BSwap(asm.R1, s)})
	}
	var probes []probe
	for _, o := range ops {
		for _, a := range vals64 {
			probes = append(probes, probe{
				name: fmt.Sprintf("%s(%#x)", o.name, a), in: []uint64{a, a},
				insns: asm.Instructions{o.ins}, out: []asm.Register{asm.R1},
			})
		}
	}
	t.Logf("%d unary results compared with the kernel", diff(t, probes))
}

// TestKernelJump compares every conditional jump of JMP and JMP32 with
// register and immediate sources over pairs of edge values: R1 becomes 1
// if the jump was taken, 0 otherwise.
func TestKernelJump(t *testing.T) {
	conds := []struct {
		name string
		op   asm.JumpOp
	}{
		{"jeq", asm.JEq}, {"jne", asm.JNE}, {"jgt", asm.JGT}, {"jge", asm.JGE}, {"jlt", asm.JLT},
		{"jle", asm.JLE}, {"jset", asm.JSet}, {"jsgt", asm.JSGT}, {"jsge", asm.JSGE}, {"jslt", asm.JSLT},
		{"jsle", asm.JSLE},
	}
	total := 0
	for _, c := range conds {
		for _, is32 := range []bool{false, true} {
			for _, reg := range []bool{false, true} {
				name := c.name
				if is32 {
					name += "32"
				}
				if reg {
					name += "_reg"
				} else {
					name += "_imm"
				}
				t.Run(name, func(t *testing.T) {
					var probes []probe
					n := 0
					mk := func(a, b uint64, bimm int32) {
						label := fmt.Sprintf("taken%d", n)
						n++
						var j asm.Instruction
						switch {
						case is32 && reg:
							j = c.op.Reg32(asm.R1, asm.R2, label)
						case is32:
							j = c.op.Imm32(asm.R1, bimm, label)
						case reg:
							j = c.op.Reg(asm.R1, asm.R2, label)
						default:
							j = c.op.Imm(asm.R1, bimm, label)
						}
						probes = append(probes, probe{
							name: fmt.Sprintf("%s(%#x, %#x)", name, a, b), in: []uint64{a, b},
							insns: asm.Instructions{
								asm.Mov.Imm(asm.R3, 1),
								j,
								asm.Mov.Imm(asm.R3, 0),
								asm.Mov.Reg(asm.R1, asm.R3).WithSymbol(label),
							},
							out: []asm.Register{asm.R1},
						})
					}
					for _, a := range vals64 {
						if reg {
							for _, b := range vals64 {
								mk(a, b, 0)
							}
						} else {
							for _, b := range imms {
								mk(a, uint64(int64(b)), b)
							}
						}
					}
					total += diff(t, probes)
				})
			}
		}
	}
	t.Logf("%d jump outcomes compared with the kernel", total)
}
