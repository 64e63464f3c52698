package vm

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

// prog builds a Program from cilium asm (labels resolved).
func prog(t testing.TB, insns ...asm.Instruction) *Program {
	t.Helper()
	return &Program{Name: t.Name(), Insns: toVM(t, insns)}
}

func run(t testing.TB, p *Program, ctx []byte) (uint64, error) {
	t.Helper()
	return p.Run(NewMachine(), ctx)
}

func mustRun(t testing.TB, p *Program, ctx []byte) uint64 {
	t.Helper()
	v, err := run(t, p, ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return v
}

// wantErr checks that err wraps sentinel and names instruction pc.
func wantErr(t *testing.T, err error, sentinel error, pc int, detail string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got error %v, want %v", err, sentinel)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if e.PC != pc {
		t.Errorf("error names insn %d, want %d: %v", e.PC, pc, err)
	}
	if detail != "" && !strings.Contains(err.Error(), detail) {
		t.Errorf("error %q does not mention %q", err, detail)
	}
}

func TestReturnValue(t *testing.T) {
	p := prog(t, asm.LoadImm(asm.R0, -5, asm.DWord), asm.Return())
	if v := mustRun(t, p, nil); v != uint64(0xfffffffffffffffb) {
		t.Fatalf("got %#x", v)
	}
}

func TestCtxAccess(t *testing.T) {
	ctx := alignedBuf(16)
	ctx[3] = 0x42
	p := prog(t,
		asm.LoadMem(asm.R0, asm.R1, 3, asm.Byte),
		storeImm(asm.R1, 8, 7, asm.Word),
		asm.LoadMem(asm.R2, asm.R1, 8, asm.DWord), // last 8 bytes: in bounds
		asm.Add.Reg(asm.R0, asm.R2),
		asm.Return())
	if v := mustRun(t, p, ctx); v != 0x42+7 {
		t.Fatalf("got %#x", v)
	}
	if ctx[8] != 7 {
		t.Fatal("store to ctx not visible")
	}
}

func TestMemoryViolations(t *testing.T) {
	val := alignedBuf(16)
	ro := alignedBuf(16)
	maps := []MapRef{
		{ValueAddr: uintptr(unsafe.Pointer(&val[0])), ValueSize: 16},
		{ValueAddr: uintptr(unsafe.Pointer(&ro[0])), ValueSize: 16, ReadOnly: true},
	}
	cases := []struct {
		name   string
		insns  []asm.Instruction
		pc     int // in VM instruction indexes
		detail string
	}{
		{"stack below frame", []asm.Instruction{storeImm(asm.RFP, -520, 1, asm.DWord), asm.Return()}, 0, "store of 8 bytes"},
		{"stack straddling bottom", []asm.Instruction{asm.LoadMem(asm.R0, asm.RFP, -516, asm.DWord), asm.Return()}, 0, "load of 8 bytes"},
		{"stack above top", []asm.Instruction{asm.Mov.Imm(asm.R0, 0), asm.StoreMem(asm.RFP, 0, asm.R0, asm.Byte), asm.Return()}, 1, "stack frames"},
		{"ctx past end", []asm.Instruction{asm.LoadMem(asm.R0, asm.R1, 12, asm.DWord), asm.Return()}, 0, "ctx is 16 bytes"},
		{"ctx before start", []asm.Instruction{asm.LoadMem(asm.R0, asm.R1, -1, asm.Byte), asm.Return()}, 0, ""},
		{"null", []asm.Instruction{asm.Mov.Imm(asm.R1, 0), asm.LoadMem(asm.R0, asm.R1, 0, asm.Word), asm.Return()}, 1, "at 0x0"},
		{"wild", []asm.Instruction{asm.LoadImm(asm.R1, 0x7fff_dead_beef, asm.DWord), storeImm(asm.R1, 0, 1, asm.Word), asm.Return()}, 2, ""},
		{"wraparound", []asm.Instruction{asm.Mov.Imm(asm.R1, -4), asm.LoadMem(asm.R0, asm.R1, 0, asm.DWord), asm.Return()}, 1, ""},
		{"value past end", []asm.Instruction{asm.LoadMapValue(asm.R1, 0, 8), asm.LoadMem(asm.R0, asm.R1, 4, asm.DWord), asm.Return()}, 2, ""},
		{"read-only value", []asm.Instruction{asm.LoadMapValue(asm.R1, 1, 0), storeImm(asm.R1, 0, 1, asm.Byte), asm.Return()}, 2, "read-only"},
		{"read-only value atomic", []asm.Instruction{asm.LoadMapValue(asm.R1, 1, 0), asm.Mov.Imm(asm.R2, 1), atomicInsn(asm.AddAtomic, asm.R1, asm.R2, asm.DWord, 0), asm.Return()}, 3, "read-only"},
		{"misaligned atomic", []asm.Instruction{storeImm(asm.RFP, -8, 0, asm.Word), storeImm(asm.RFP, -4, 0, asm.Word), asm.Mov.Imm(asm.R2, 1), atomicInsn(asm.AddAtomic, asm.RFP, asm.R2, asm.Word, -6), asm.Return()}, 3, "misaligned"},
		{"map reference is not a pointer", []asm.Instruction{asm.LoadMapPtr(asm.R1, 0), asm.LoadMem(asm.R0, asm.R1, 0, asm.Byte), asm.Return()}, 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := prog(t, c.insns...) // map "fds" are Program.Maps indexes here
			p.Maps = maps
			m := NewMachine()
			before := append([]byte(nil), m.stack...)
			_, err := p.Run(m, alignedBuf(16))
			wantErr(t, err, ErrMemory, c.pc, c.detail)
			if string(before) != string(m.stack) && c.name != "misaligned atomic" {
				t.Error("stack changed by a faulting run")
			}
			for _, b := range ro {
				if b != 0 {
					t.Fatal("read-only value written")
				}
			}
		})
	}
}

// RunEach is Run in a loop: each run's result reaches after, a false from
// after stops the loop, and a helper panic ends its run with ErrPanic and
// ends the loop.
func TestRunEach(t *testing.T) {
	m := NewMachine()
	calls := 0
	m.Helpers.Set(FnGetPrandomU32, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		calls++
		if calls == 4 {
			panic("helper bug")
		}
		return uint64(calls), nil
	})
	p := prog(t, call(FnGetPrandomU32), asm.Return())
	var got []uint64
	var last error
	if runs := p.RunEach(m, nil, 10, func(r0 uint64, err error) bool {
		got, last = append(got, r0), err
		return true
	}); runs != 4 || !errors.Is(last, ErrPanic) || len(got) != 4 || got[2] != 3 {
		t.Fatalf("runs %d, results %v, last error %v; want 4 runs ending in ErrPanic", runs, got, last)
	}
	calls = 10
	if runs := p.RunEach(m, nil, 10, func(r0 uint64, err error) bool { return r0 < 12 }); runs != 2 {
		t.Fatalf("after returning false at the second run: %d runs", runs)
	}
	if v, err := p.Run(m, nil); err != nil || v != 13 {
		t.Fatalf("the machine runs again after RunEach: %d, %v", v, err)
	}
}
