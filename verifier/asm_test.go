package verifier_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/userbpf/userbpf/loader/loadertest"
	"github.com/userbpf/userbpf/verifier"
	"github.com/userbpf/userbpf/vm"
)

// Raw instructions for the programs clang will not write.
func mov(dst uint8, imm int32) vm.Insn { return vm.Insn{Op: 0xb7, Dst: dst, Imm: imm} }
func movX(dst, src uint8) vm.Insn      { return vm.Insn{Op: 0xbf, Dst: dst, Src: src} }
func exit() vm.Insn                    { return vm.Insn{Op: 0x95} }
func ja(off int16) vm.Insn             { return vm.Insn{Op: 0x05, Off: off} }
func jeq(dst uint8, imm int32, off int16) vm.Insn {
	return vm.Insn{Op: 0x15, Dst: dst, Imm: imm, Off: off}
}
func callLocal(off int32) vm.Insn { return vm.Insn{Op: 0x85, Src: vm.CallLocal, Imm: off} }
func ldImm64(dst uint8, v uint64) []vm.Insn {
	return []vm.Insn{{Op: 0x18, Dst: dst, Imm: int32(uint32(v))}, {Imm: int32(uint32(v >> 32))}}
}

func cat(parts ...any) []vm.Insn {
	var out []vm.Insn
	for _, p := range parts {
		switch p := p.(type) {
		case vm.Insn:
			out = append(out, p)
		case []vm.Insn:
			out = append(out, p...)
		}
	}
	return out
}

// callChain is main calling f1 calling … f(n-1): n frames.
func callChain(n int) []vm.Insn {
	var out []vm.Insn
	for i := 0; i < n-1; i++ {
		out = append(out, callLocal(1), exit())
	}
	return append(out, mov(0, 0), exit())
}

// asmCases are known-bad programs written as instructions: each wrong for
// one reason, rejected at insn.
var asmCases = []struct {
	name   string
	insns  []vm.Insn
	err    error
	insn   int
	kernel bool // the kernel must reject it too
}{
	{"uninit_reg", cat(movX(0, 2), exit()), verifier.ErrUninitReg, 0, true},
	{"uninit_r0_at_exit", cat(exit()), verifier.ErrUninitReg, 0, true},
	{"jump_into_ld_imm64", cat(mov(0, 0), jeq(1, 0, 1), ldImm64(0, 1<<32), exit()), verifier.ErrBadJump, 1, true},
	{"jump_out_of_program", cat(mov(0, 0), ja(5), exit()), verifier.ErrBadJump, 1, true},
	{"falls_off_the_end", cat(mov(0, 0)), verifier.ErrBadJump, 0, true},
	{"unreachable_insn", cat(mov(0, 0), exit(), mov(0, 1), exit()), verifier.ErrUnreachable, 2, true},
	{"recursive_call", cat(callLocal(1), exit(), callLocal(-1), exit()), verifier.ErrBadCall, 2, true},
	{"call_depth", callChain(vm.MaxCallDepth + 1), verifier.ErrCallDepth, 0, true},
	{"invalid_opcode", cat(mov(0, 0), vm.Insn{Op: 0xff}, exit()), verifier.ErrInvalidInsn, 1, true},
	{"deref_scalar", cat(mov(1, 64), vm.Insn{Op: 0x79, Dst: 0, Src: 1}, exit()), verifier.ErrMemAccess, 1, true},
	{"stack_out_of_frame", cat(mov(0, 0), vm.Insn{Op: 0x7a, Dst: 10, Off: 8, Imm: 1}, exit()), verifier.ErrMemAccess, 1, true},
}

func TestAsmPrograms(t *testing.T) {
	for _, c := range asmCases {
		t.Run(c.name, func(t *testing.T) {
			err := verifier.Verify(&verifier.Program{Name: c.name, Insns: c.insns}, nil)
			var ve *verifier.Error
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *verifier.Error", err)
			}
			if !errors.Is(err, c.err) || ve.Insn != c.insn {
				t.Fatalf("got %v, want %v at insn %d", err, c.err, c.insn)
			}
			t.Log(err)
		})
	}
	// The call chain of exactly MaxCallDepth frames is fine.
	if err := verifier.Verify(&verifier.Program{Insns: callChain(vm.MaxCallDepth)}, nil); err != nil {
		t.Errorf("%d frames: %v", vm.MaxCallDepth, err)
	}
}

// TestAsmProgramsKernel: the kernel rejects the same instruction streams.
func TestAsmProgramsKernel(t *testing.T) {
	if err := loadertest.KernelAvailable(); err != nil {
		t.Skipf("no kernel to compare with: %v", err)
	}
	for _, c := range asmCases {
		t.Run(c.name, func(t *testing.T) {
			insns, err := asm.AppendInstructions(nil, bytes.NewReader(vm.Encode(c.insns)), binary.LittleEndian, "linux")
			if err != nil {
				t.Fatal(err)
			}
			p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, Instructions: insns, License: "GPL"})
			if err == nil {
				p.Close()
				t.Fatal("the kernel accepts it")
			}
			t.Logf("kernel: %v", err)
		})
	}
	good, err := asm.AppendInstructions(nil, bytes.NewReader(vm.Encode(callChain(vm.MaxCallDepth))), binary.LittleEndian, "linux")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, Instructions: good, License: "GPL"})
	if err != nil {
		t.Fatalf("the kernel rejects %d frames: %v", vm.MaxCallDepth, err)
	}
	p.Close()
}
