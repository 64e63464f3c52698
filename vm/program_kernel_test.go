package vm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// diffRet runs a whole program in the kernel (socket filter,
// BPF_PROG_TEST_RUN) and in the VM and compares the (32-bit) return
// values; it returns the kernel's.
func diffRet(t *testing.T, insns asm.Instructions) uint32 {
	t.Helper()
	needKernel(t)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, Instructions: insns, License: "GPL"})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("kernel rejected the program: %+v", ve)
		}
		t.Fatal(err)
	}
	defer prog.Close()
	kret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	p := &Program{Name: t.Name(), Insns: toVM(t, insns)}
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
	v, err := p.Run(NewMachine(), make([]byte, 64))
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	if uint32(v) != kret {
		t.Errorf("kernel returned %d (%#x), vm %d (%#x)", kret, kret, uint32(v), uint32(v))
	}
	return kret
}

// withFunc attaches BTF func info (the kernel wants it for every function
// of a program that uses callbacks): a static function of nparams longs
// returning a long.
func withFunc(ins asm.Instruction, name string, nparams int) asm.Instruction {
	long := &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	proto := &btf.FuncProto{Return: long}
	for i := 0; i < nparams; i++ {
		proto.Params = append(proto.Params, btf.FuncParam{Name: fmt.Sprintf("a%d", i), Type: long})
	}
	linkage := btf.StaticFunc
	if nparams == 1 && name == "main" {
		linkage = btf.GlobalFunc
	}
	return btf.WithFuncMetadata(ins, &btf.Func{Name: name, Type: proto, Linkage: linkage})
}

func funcRef(dst asm.Register, sym string) asm.Instruction {
	return asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: dst, Src: asm.PseudoFunc, Constant: -1}.WithReference(sym)
}

// TestKernelCalls: bpf-to-bpf calls with a pointer into the caller's
// frame, callee-saved R6/R7, and a nested call.
func TestKernelCalls(t *testing.T) {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R6, 10),
		asm.Mov.Imm(asm.R7, 20),
		asm.StoreImm(asm.RFP, -8, 5, asm.Word),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 3),
		asm.Call.Label("f"),
		asm.Add.Reg(asm.R0, asm.R6),
		asm.Add.Reg(asm.R0, asm.R7),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
		asm.Add.Reg(asm.R0, asm.R1),
		asm.Return(),

		asm.Mov.Reg(asm.R6, asm.R1).WithSymbol("f"),
		asm.Mov.Reg(asm.R7, asm.R2),
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord),
		asm.Mul.Reg(asm.R1, asm.R7),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Call.Label("g"),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R0),
		asm.StoreMem(asm.R6, 0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R1),
		asm.Return(),

		asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("g"),
		asm.Mul.Reg(asm.R0, asm.R0),
		asm.Add.Imm(asm.R0, 1),
		asm.Return(),
	}
	if got := diffRet(t, insns); got != 80 {
		t.Errorf("kernel returned %d, want 80", got)
	}
}

// TestKernelCallDepth: a chain of calls 8 frames deep (the kernel's limit).
func TestKernelCallDepth(t *testing.T) {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R1, 0),
		asm.Call.Label("f1"),
		asm.Return(),
	}
	for i := 1; i <= 7; i++ {
		body := asm.Instructions{
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord).WithSymbol(fmt.Sprintf("f%d", i)),
			asm.Add.Imm(asm.R1, int32(i)),
		}
		if i < 7 {
			body = append(body, asm.Call.Label(fmt.Sprintf("f%d", i+1)))
		} else {
			body = append(body, asm.Mov.Reg(asm.R0, asm.R1))
		}
		body = append(body,
			asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
			asm.Mul.Imm(asm.R0, 3),
			asm.Add.Reg(asm.R0, asm.R1),
			asm.Return())
		insns = append(insns, body...)
	}
	diffRet(t, insns)
}

// TestKernelLoop: bpf_loop with a callback given as a pseudo function
// pointer, an early stop, and its -EINVAL / -E2BIG returns.
func TestKernelLoop(t *testing.T) {
	insns := asm.Instructions{
		withFunc(asm.StoreImm(asm.RFP, -8, 0, asm.Word), "main", 1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Imm(asm.R1, 100),
		funcRef(asm.R2, "cb"),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.Mov.Reg(asm.R6, asm.R0),
		// flags != 0: -EINVAL
		asm.Mov.Imm(asm.R1, 3),
		funcRef(asm.R2, "cb"),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 1),
		asm.FnLoop.Call(),
		asm.Mul.Imm(asm.R0, 1000),
		asm.Add.Reg(asm.R6, asm.R0),
		// nr_loops > 1<<23: -E2BIG
		asm.Mov.Imm(asm.R1, 1<<24),
		funcRef(asm.R2, "cb"),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.Mul.Imm(asm.R0, 100000),
		asm.Add.Reg(asm.R6, asm.R0),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
		asm.LSh.Imm(asm.R0, 8),
		asm.Add.Reg(asm.R0, asm.R6),
		asm.Return(),

		withFunc(asm.LoadMem(asm.R3, asm.R2, 0, asm.DWord).WithSymbol("cb"), "cb", 2),
		asm.Mov.Reg(asm.R4, asm.R1),
		asm.Mul.Reg(asm.R4, asm.R1),
		asm.Add.Reg(asm.R3, asm.R4),
		asm.StoreMem(asm.R2, 0, asm.R3, asm.DWord),
		asm.Mov.Imm(asm.R0, 0),
		asm.JNE.Imm(asm.R1, 50, "out"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return().WithSymbol("out"),
	}
	got := diffRet(t, insns)
	want := uint32(42925<<8 + 51 - 22*1000 - 7*100000)
	if got != want {
		t.Errorf("kernel returned %d, want %d", got, want)
	}
}
