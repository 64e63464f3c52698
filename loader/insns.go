package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/verifier"
	"github.com/userbpf/userbpf/vm"
)

// maxInsns bounds a program's length (the kernel's BPF_COMPLEXITY_LIMIT_INSNS
// for privileged loaders).
const maxInsns = 1_000_000

// KnownHelper says whether the kernel numbers a helper (cilium/ebpf knows
// its name).
func KnownHelper(fn asm.BuiltinFunc) bool {
	return fn > 0 && !strings.HasPrefix(fn.String(), "BuiltinFunc(")
}

func convertProgram(ps *ebpf.ProgramSpec, types *btf.Spec, byObj map[string]*MapSpec, opts *Options) (*ProgramSpec, error) {
	if ps.Type == ebpf.UnspecifiedProgram {
		return nil, fmt.Errorf("%w: section %q (no program type is known for it)", ErrUnsupported, ps.SectionName)
	}
	out := &ProgramSpec{Name: ps.Name, Section: ps.SectionName, Type: ps.Type, AttachType: ps.AttachType,
		License: ps.License, Kfuncs: map[int]string{}, Funcs: map[int]verifier.Func{}, ObjTypes: map[int]btf.Type{}}
	insns := slices.Clone(ps.Instructions)
	known := opts.Helper
	if known == nil {
		known = KnownHelper
	}

	// Symbols (function entry points) and the raw index of each
	// instruction, for references and error messages.
	symbols := map[string]bool{}
	raw := make([]int, len(insns))
	n := 0
	for i := range insns {
		raw[i] = n
		if s := insns[i].Symbol(); s != "" {
			symbols[s] = true
		}
		n += int(insns[i].Size() / asm.InstructionSize)
		if n > maxInsns {
			return nil, fmt.Errorf("more than %d instructions", maxInsns)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("no instructions")
	}

	mapIndex := map[string]int{}
	helpers := map[asm.BuiltinFunc]bool{}
	graphTypes := newGraphBuilder(types)
	for i := range insns {
		ins := &insns[i]
		at := raw[i]
		recordSource(out, ins, at)
		if rel := btf.CORERelocationMetadata(ins); rel != nil {
			if err := localTypeID(graphTypes, ins, rel); err != nil {
				return nil, fmt.Errorf("instruction %d: %w", at, err)
			}
			if t, ok := localType(rel, types); ok {
				out.ObjTypes[at] = t // what the verifier checks bpf_obj_new against
			}
		}
		ref := ins.Reference()
		switch {
		case ins.OpCode.IsDWordLoad() && (ins.Src == asm.PseudoMapFD || ins.Src == asm.PseudoMapValue):
			if ref == "" {
				return nil, fmt.Errorf("instruction %d: %w: a map load (src %d) without a relocation", at, ErrUnsupported, ins.Src)
			}
			ms := byObj[ref]
			if ms == nil {
				return nil, fmt.Errorf("instruction %d: %w: relocation to %q, which is not a map of the object (an extern?)", at, ErrUnsupported, ref)
			}
			idx, ok := mapIndex[ref]
			if !ok {
				idx = len(out.MapNames)
				mapIndex[ref] = idx
				out.MapNames = append(out.MapNames, ref)
			}
			if ins.Src == asm.PseudoMapValue {
				off := uint64(ins.Constant) >> 32
				if !ms.GlobalData && !(ms.Spec.MaxEntries == 1 && ms.Spec.Type == maps.Array) {
					return nil, fmt.Errorf("instruction %d: %w: direct value access to %s map %s", at, ErrUnsupported, ms.Spec.Type, ref)
				}
				if off >= uint64(ms.Spec.ValueSize) {
					return nil, fmt.Errorf("instruction %d: offset %d into %s is past its %d-byte value", at, off, ref, ms.Spec.ValueSize)
				}
				ins.Constant = int64(off<<32 | uint64(uint32(idx)))
			} else {
				ins.Constant = int64(idx)
			}
		case ins.OpCode.IsDWordLoad() && ins.Src == asm.PseudoFunc:
			if !symbols[ref] {
				return nil, fmt.Errorf("instruction %d: callback %q is not a function of the object", at, ref)
			}
		case ins.OpCode.IsDWordLoad():
			if ins.Src != asm.R0 {
				return nil, fmt.Errorf("instruction %d: %w: 64-bit load of pseudo kind %d", at, ErrUnsupported, ins.Src)
			}
			if ref != "" {
				return nil, fmt.Errorf("instruction %d: %w: relocation to symbol %q (a __ksym or extern address)", at, ErrUnsupported, ref)
			}
		case ins.OpCode.JumpOp() == asm.Call && ins.OpCode.Class() == asm.JumpClass:
			switch ins.Src {
			case asm.PseudoCall:
				if ref != "" && !symbols[ref] {
					return nil, fmt.Errorf("instruction %d: %w: call to %q, which the object does not define", at, ErrUnsupported, ref)
				}
				if ref == "" {
					t := int64(at) + 1 + int64(int32(ins.Constant))
					if t < 0 || t >= int64(n) {
						return nil, fmt.Errorf("instruction %d: call to instruction %d, outside the program", at, t)
					}
				}
			case asm.PseudoKfuncCall:
				if ref == "" {
					return nil, fmt.Errorf("instruction %d: kfunc call without a name", at)
				}
				out.Kfuncs[at] = ref
				ins.Constant = -1
				ins.Offset = 0
			case asm.R0:
				if ref != "" {
					return nil, fmt.Errorf("instruction %d: %w: helper call relocated to %q", at, ErrUnsupported, ref)
				}
				fn := asm.BuiltinFunc(ins.Constant)
				if ins.Constant != int64(int32(ins.Constant)) || !KnownHelper(fn) {
					return nil, fmt.Errorf("instruction %d: %w: unknown helper %d", at, ErrUnsupported, ins.Constant)
				}
				if !known(fn) {
					return nil, fmt.Errorf("instruction %d: %w: helper %s (%d) is not implemented", at, ErrUnsupported, fn, int32(fn))
				}
				helpers[fn] = true
			default:
				return nil, fmt.Errorf("instruction %d: %w: call of pseudo kind %d", at, ErrUnsupported, ins.Src)
			}
		default:
			if ref != "" && (!ins.OpCode.Class().IsJump() || !symbols[ref]) {
				return nil, fmt.Errorf("instruction %d: %w: relocation to %q on %v", at, ErrUnsupported, ref, ins.OpCode)
			}
		}
	}

	if len(graphTypes.tb.Types) > 0 {
		tb, err := graphTypes.table()
		if err != nil {
			return nil, fmt.Errorf("bpf_obj_new types: %w", err)
		}
		out.Types = tb
	}

	var buf bytes.Buffer
	buf.Grow(n * asm.InstructionSize)
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	out.Insns = Decode(buf.Bytes())
	if len(out.Insns) != n {
		return nil, fmt.Errorf("encoding: %d instructions, want %d", len(out.Insns), n)
	}
	if err := checkTargets(out.Insns); err != nil {
		return nil, err
	}
	for fn := range helpers {
		out.Helpers = append(out.Helpers, fn)
	}
	slices.Sort(out.Helpers)
	return out, nil
}

// checkTargets verifies that bpf-to-bpf calls and callback references land
// inside the program and not on the second half of an LD_IMM64.
func checkTargets(insns []vm.Insn) error {
	half := make([]bool, len(insns))
	for i := 0; i < len(insns); i++ {
		if insns[i].Op == opLdImm64 {
			if i+1 < len(insns) {
				half[i+1] = true
			}
			i++
		}
	}
	for i, ins := range insns {
		var t int64
		switch {
		case ins.Op == opCall && ins.Src == vm.CallLocal:
			t = int64(i) + 1 + int64(ins.Imm)
		case ins.Op == opLdImm64 && ins.Src == PseudoFunc:
			t = int64(i) + 1 + int64(ins.Imm)
		default:
			continue
		}
		if t < 0 || t >= int64(len(insns)) || half[t] {
			return fmt.Errorf("instruction %d: target %d is not an instruction of the program", i, t)
		}
	}
	return nil
}

// Opcodes the loader looks at.
const (
	opLdImm64 = 0x18 // BPF_LD | BPF_IMM | BPF_DW
	opCall    = 0x85 // BPF_JMP | BPF_CALL
)

// Decode decodes raw little-endian instructions (8 bytes each; a trailing
// partial instruction is ignored).
func Decode(b []byte) []vm.Insn {
	out := make([]vm.Insn, len(b)/asm.InstructionSize)
	for i := range out {
		r := b[i*asm.InstructionSize:]
		out[i] = vm.Insn{Op: r[0], Dst: r[1] & 0xf, Src: r[1] >> 4,
			Off: int16(binary.LittleEndian.Uint16(r[2:])), Imm: int32(binary.LittleEndian.Uint32(r[4:]))}
	}
	return out
}

// Encode encodes instructions as the kernel takes them (little endian).
func Encode(insns []vm.Insn) []byte {
	b := make([]byte, 0, len(insns)*asm.InstructionSize)
	for _, in := range insns {
		b = append(b, in.Op, in.Dst&0xf|in.Src<<4)
		b = binary.LittleEndian.AppendUint16(b, uint16(in.Off))
		b = binary.LittleEndian.AppendUint32(b, uint32(in.Imm))
	}
	return b
}

// Disassemble returns cilium/ebpf's disassembly of instructions, one line
// per instruction (an LD_IMM64 takes one line for its two halves).
func Disassemble(insns []vm.Insn) (string, error) {
	is, err := asm.AppendInstructions(nil, bytes.NewReader(Encode(insns)), binary.LittleEndian, "linux")
	if err != nil {
		return "", err
	}
	return fmt.Sprint(is), nil
}
