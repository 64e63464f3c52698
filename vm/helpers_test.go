package vm

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"github.com/userbpf/userbpf/internal/isa"
)

func call(fn int32) asm.Instruction {
	return asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Constant: int64(fn)}
}

func TestHelperIDs(t *testing.T) {
	for _, c := range []struct {
		ours int32
		fn   asm.BuiltinFunc
	}{
		{FnMapLookupElem, asm.FnMapLookupElem}, {FnKtimeGetNs, asm.FnKtimeGetNs}, {FnTracePrintk, asm.FnTracePrintk},
		{FnGetCurrentComm, asm.FnGetCurrentComm}, {FnProbeReadKernel, asm.FnProbeReadKernel}, {FnJiffies64, asm.FnJiffies64},
		{FnKtimeGetBootNs, asm.FnKtimeGetBootNs}, {FnKtimeGetCoarseNs, asm.FnKtimeGetCoarseNs}, {FnLoop, asm.FnLoop},
		{FnRingbufSubmit, asm.FnRingbufSubmit}, {FnUserRingbufDrain, asm.FnUserRingbufDrain}, {FnSpinLock, asm.FnSpinLock},
		{FnMapLookupPercpuElem, asm.FnMapLookupPercpuElem}, {FnForEachMapElem, asm.FnForEachMapElem},
	} {
		ins := toVM(t, asm.Instructions{c.fn.Call()})
		if ins[0].Imm != c.ours {
			t.Errorf("%v is %d, we say %d", c.fn, ins[0].Imm, c.ours)
		}
	}
}

func TestSimpleHelpers(t *testing.T) {
	m := NewMachine()
	m.CPU = 3
	one := func(fn int32) uint64 {
		t.Helper()
		v, err := prog(t, call(fn), asm.Return()).Run(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if a, b := one(FnKtimeGetNs), one(FnKtimeGetNs); a == 0 || b < a {
		t.Errorf("ktime_get_ns %d then %d", a, b)
	}
	if one(FnKtimeGetBootNs) == 0 || one(FnKtimeGetCoarseNs) == 0 || one(FnJiffies64) == 0 {
		t.Error("a clock returned 0")
	}
	if one(FnGetSmpProcessorID) != 3 {
		t.Error("cpu")
	}
	if v := one(FnGetCurrentPidTgid); v>>32 != uint64(os.Getpid()) || uint32(v) == 0 {
		t.Errorf("pid_tgid %#x", v)
	}
	if v := one(FnGetCurrentUIDGid); uint32(v) != uint32(os.Getuid()) || v>>32 != uint64(os.Getgid()) {
		t.Errorf("uid_gid %#x", v)
	}
	seen := map[uint64]bool{}
	for i := 0; i < 100; i++ {
		seen[one(FnGetPrandomU32)] = true
	}
	if len(seen) < 95 {
		t.Errorf("prandom: %d distinct of 100", len(seen))
	}
}

func TestGetCurrentComm(t *testing.T) {
	m := NewMachine()
	copy(m.Comm[:], "abcdefghijklmno")
	ctx := make([]byte, 16)
	p := prog(t,
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, -8), asm.Mov.Imm(asm.R2, 8),
		call(FnGetCurrentComm),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
		asm.StoreMem(asm.R6, 0, asm.R1, asm.DWord),
		asm.Return())
	if v, err := p.Run(m, ctx); err != nil || v != 0 {
		t.Fatalf("%d %v", v, err)
	}
	if string(ctx[:8]) != "abcdefg\x00" {
		t.Fatalf("comm %q", ctx[:8])
	}
}

func TestProbeRead(t *testing.T) {
	ctx := []byte("0123456789abcdef")
	readInto := func(src asm.Instruction, fn int32, size int32) (uint64, []byte, error) {
		p := prog(t,
			asm.Mov.Reg(asm.R6, asm.R1),
			storeImm(asm.RFP, -16, -1, asm.DWord), storeImm(asm.RFP, -8, -1, asm.DWord),
			asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, -16), asm.Mov.Imm(asm.R2, size),
			src,
			call(fn),
			asm.LoadMem(asm.R1, asm.RFP, -16, asm.DWord), asm.StoreMem(asm.R6, 0, asm.R1, asm.DWord),
			asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord), asm.StoreMem(asm.R6, 8, asm.R1, asm.DWord),
			asm.Return())
		c := append([]byte(nil), ctx...)
		v, err := p.Run(NewMachine(), c)
		return v, c, err
	}
	v, out, err := readInto(asm.Mov.Reg(asm.R3, asm.R6), FnProbeReadKernel, 10)
	if err != nil || v != 0 || string(out[:10]) != "0123456789" || out[10] != 0xff {
		t.Fatalf("probe_read: %d %v %q", v, err, out)
	}
	v, out, err = readInto(asm.LoadImm(asm.R3, 0x1000, asm.DWord), FnProbeReadUser, 16)
	if err != nil || int64(v) != -EFAULT || string(out) != string(make([]byte, 16)) {
		t.Fatalf("probe_read of bad memory: %d %v %q (want -EFAULT and zeroed)", int64(v), err, out)
	}
	c := []byte("hi\x00zzzzzzzzzzzzz")
	ctx = c
	v, out, err = readInto(asm.Mov.Reg(asm.R3, asm.R6), FnProbeReadKernelStr, 16)
	if err != nil || v != 3 || string(out[:3]) != "hi\x00" {
		t.Fatalf("probe_read_str: %d %v %q", v, err, out)
	}
	// The destination must be writable by the program: a fault, not -EFAULT.
	p := prog(t, asm.Mov.Imm(asm.R1, 64), asm.Mov.Imm(asm.R2, 8), asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -8),
		storeImm(asm.RFP, -8, 0, asm.DWord), call(FnProbeReadKernel), asm.Return())
	_, err = run(t, p, nil)
	wantErr(t, err, ErrMemory, 5, "not writable")
}

func TestTracePrintk(t *testing.T) {
	var got []string
	m := NewMachine()
	m.Trace = func(_ *Machine, msg []byte) { got = append(got, string(msg)) }
	format := "x=%d u=%u %lld|%5x|%-3d|%s|%c %% %lx\x00"
	for len(format)%8 != 0 {
		format += "\x00"
	}
	ctx := append([]byte(format), "str\x00"...)
	// Up to three arguments: split the conversions over several calls.
	printk := func(f string, args ...asm.Instruction) []asm.Instruction {
		b := []byte(f + "\x00")
		var ins []asm.Instruction
		for i := 0; i < len(b); i++ {
			ins = append(ins, storeImm(asm.RFP, int16(-64+i), int64(b[i]), asm.Byte))
		}
		ins = append(ins, asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, -64), asm.Mov.Imm(asm.R2, int32(len(b))))
		ins = append(ins, args...)
		return append(ins, call(FnTracePrintk))
	}
	var insns []asm.Instruction
	insns = append(insns, asm.Mov.Reg(asm.R9, asm.R1))
	insns = append(insns, printk("x=%d u=%u %lld",
		asm.Mov.Imm(asm.R3, -5), asm.Mov.Imm(asm.R4, -5), asm.Mov.Imm(asm.R5, -5))...)
	insns = append(insns, printk("|%5x|%-3d|%s|",
		asm.Mov.Imm(asm.R3, 255), asm.Mov.Imm(asm.R4, 7), asm.Mov.Reg(asm.R5, asm.R9))...)
	insns = append(insns, asm.Mov.Reg(asm.R6, asm.R0))
	insns = append(insns, printk("%c %% %lx %p", asm.Mov.Imm(asm.R3, 'A'), asm.LoadImm(asm.R4, 0x1234567890, asm.DWord), asm.Mov.Imm(asm.R5, 16))...)
	insns = append(insns, printk("%d %d %d %d")...) // four conversions: -EINVAL
	insns = append(insns, printk("%q")...)          // unknown: -EINVAL
	insns = append(insns, asm.Add.Reg(asm.R0, asm.R6), asm.Return())
	ctx = []byte("str\x00")
	v, err := prog(t, insns...).Run(m, ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"x=-5 u=4294967291 -5", "|   ff|7  |str|", "A % 1234567890 0x0000000000000010"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("trace:\n%q\nwant\n%q", got, want)
	}
	if int64(v) != -EINVAL+int64(len(want[1])) {
		t.Errorf("R0 %d", int64(v))
	}
}

func TestUnknownHelperAndKfunc(t *testing.T) {
	_, err := run(t, prog(t, asm.Mov.Imm(asm.R0, 0), call(9999), asm.Return()), nil)
	wantErr(t, err, ErrUnknownHelper, 1, "helper 9999")
	kf := raw(Insn{Op: isa.OpCall, Src: CallKfunc, Imm: 77}, Insn{Op: isa.OpExit})
	_, err = run(t, kf, nil)
	wantErr(t, err, ErrUnknownHelper, 0, "kfunc 77")
	m := NewMachine()
	m.Kfuncs = KfuncTable{77: func(m *Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) { return r1 + 41, nil }}
	kf.Insns = append([]Insn{{Op: isa.ClassALU64 | isa.AluMOV | isa.SrcK, Dst: 1, Imm: 1}}, kf.Insns...)
	if v, err := kf.Run(m, nil); err != nil || v != 42 {
		t.Fatalf("kfunc: %d %v", v, err)
	}
}

// A helper's error stops the run and names the calling instruction.
func TestHelperError(t *testing.T) {
	boom := errors.New("boom")
	m := NewMachine()
	m.Helpers.Set(1000, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) { return 0, boom })
	_, err := prog(t, asm.Mov.Imm(asm.R1, 0), call(1000), asm.Return()).Run(m, nil)
	wantErr(t, err, boom, 1, "helper 1000")
}

// Map references: PseudoMapFD loads decode back to the Handle; helpers
// hand out values with AllowRange and take them back with RevokeRange.
func TestMapRefsAndRanges(t *testing.T) {
	type fakeMap struct {
		val []byte
	}
	a := &fakeMap{val: alignedBuf(8)}
	b := &fakeMap{val: alignedBuf(8)}
	m := NewMachine()
	m.Helpers.Set(FnMapLookupElem, func(m *Machine, ref, key, _, _, _ uint64) (uint64, error) {
		h, ok := m.Map(ref)
		if !ok {
			return 0, errors.New("not a map")
		}
		fm := h.(*fakeMap)
		addr := uintptr(unsafe.Pointer(&fm.val[0]))
		m.AllowRange(addr, 8, true)
		return uint64(addr), nil
	})
	m.Helpers.Set(FnRingbufSubmit, func(m *Machine, p, _, _, _, _ uint64) (uint64, error) {
		if !m.RevokeRange(uintptr(p)) {
			return 0, errors.New("not allowed")
		}
		return 0, nil
	})
	p := prog(t,
		asm.LoadMapPtr(asm.R1, 1), call(FnMapLookupElem), asm.Mov.Reg(asm.R6, asm.R0),
		storeImm(asm.R6, 0, 0x0b, asm.DWord),
		asm.LoadMapPtr(asm.R1, 0), call(FnMapLookupElem), asm.Mov.Reg(asm.R7, asm.R0),
		storeImm(asm.R7, 0, 0x0a, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6), call(FnRingbufSubmit),
		asm.LoadMem(asm.R0, asm.R7, 0, asm.DWord), // still allowed
		asm.LoadMem(asm.R0, asm.R6, 0, asm.DWord), // revoked
		asm.Return())
	p.Maps = []MapRef{{Handle: a}, {Handle: b}}
	_, err := p.Run(m, nil)
	wantErr(t, err, ErrMemory, 13, "")
	if a.val[0] != 0x0a || b.val[0] != 0x0b {
		t.Fatalf("values %x %x", a.val, b.val)
	}
	// Ranges do not outlive the run.
	p2 := prog(t, asm.LoadImm(asm.R1, int64(uintptr(unsafe.Pointer(&a.val[0]))), asm.DWord), asm.LoadMem(asm.R0, asm.R1, 0, asm.DWord), asm.Return())
	_, err = p2.Run(m, nil)
	wantErr(t, err, ErrMemory, 2, "")

	// Dynamic map references (inner maps).
	m.Helpers.Set(1001, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) { return m.NewMapRef(b), nil })
	m.Helpers.Set(1002, func(m *Machine, ref, _, _, _, _ uint64) (uint64, error) {
		h, ok := m.Map(ref)
		if !ok || h != b {
			return 0, errors.New("bad inner ref")
		}
		return 1, nil
	})
	if v, err := prog(t, call(1001), asm.Mov.Reg(asm.R1, asm.R0), call(1002), asm.Return()).Run(m, nil); err != nil || v != 1 {
		t.Fatalf("inner ref: %d %v", v, err)
	}
}

func TestGlobalData(t *testing.T) {
	data := alignedBuf(16)
	rodata := alignedBuf(8)
	rodata[0] = 40
	p := prog(t,
		asm.LoadMapValue(asm.R1, 1, 0), asm.LoadMem(asm.R0, asm.R1, 0, asm.DWord),
		asm.LoadMapValue(asm.R2, 0, 8), asm.Mov.Imm(asm.R3, 2),
		atomicInsn(asm.AddAtomic, asm.R2, asm.R3, asm.DWord, 0),
		asm.LoadMem(asm.R3, asm.R2, 0, asm.DWord), asm.Add.Reg(asm.R0, asm.R3),
		asm.Return())
	p.Maps = []MapRef{
		{ValueAddr: uintptr(unsafe.Pointer(&data[0])), ValueSize: 16},
		{ValueAddr: uintptr(unsafe.Pointer(&rodata[0])), ValueSize: 8, ReadOnly: true},
	}
	if v := mustRun(t, p, nil); v != 42 {
		t.Fatalf("got %d", v)
	}
}

func TestTailCall(t *testing.T) {
	target := prog(t, asm.LoadMem(asm.R0, asm.R1, 0, asm.Byte), asm.Add.Imm(asm.R0, 100), asm.Return())
	m := NewMachine()
	m.Helpers.Set(FnTailCall, func(m *Machine, ctx, _, idx, _, _ uint64) (uint64, error) {
		if idx != 0 || !m.TailCall(target) {
			return Errno(ENOENT), nil
		}
		return 0, nil
	})
	p := prog(t,
		asm.Mov.Imm(asm.R3, 1), call(FnTailCall), // fails: falls through
		asm.Mov.Imm(asm.R3, 0), call(FnTailCall),
		asm.Mov.Imm(asm.R0, 1), asm.Return())
	if v, err := p.Run(m, []byte{5}); err != nil || v != 105 {
		t.Fatalf("%d %v", v, err)
	}
	// A program tail-calling itself stops after MaxTailCalls.
	var self *Program
	self = prog(t, asm.Add.Imm(asm.R6, 1), asm.Mov.Reg(asm.R0, asm.R6), asm.Mov.Imm(asm.R3, 0), call(FnTailCall), asm.Mov.Imm(asm.R0, -1), asm.Return())
	m.Helpers.Set(FnTailCall, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		if !m.TailCall(self) {
			return Errno(ENOENT), nil
		}
		return 0, nil
	})
	if v, err := self.Run(m, nil); err != nil || int64(v) != -1 {
		t.Fatalf("%d %v", v, err)
	}
	if m.tailCnt != MaxTailCalls {
		t.Errorf("%d tail calls", m.tailCnt)
	}
}

// From a subprogram, the target replaces the subprogram and returns to its
// caller; from a bpf_loop callback, the tail call fails and the callback
// goes on.
func TestTailCallFromSubprogramAndCallback(t *testing.T) {
	target := prog(t, asm.Mov.Imm(asm.R0, 40), asm.Return())
	m := NewMachine()
	m.Helpers.Set(FnTailCall, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		if !m.TailCall(target) {
			return Errno(E2BIG), nil
		}
		return 0, nil
	})
	p := prog(t,
		asm.Mov.Imm(asm.R6, 2),
		asm.Call.Label("sub"),
		asm.Add.Reg(asm.R0, asm.R6), // 40 + 2: R6 survives the replaced frame
		asm.Return(),
		asm.Mov.Imm(asm.R6, 99).WithSymbol("sub"), call(FnTailCall), asm.Mov.Imm(asm.R0, -1), asm.Return())
	if v, err := p.Run(m, nil); err != nil || v != 42 {
		t.Fatalf("tail call from a subprogram: %d %v, want 42", v, err)
	}
	cb := prog(t,
		asm.Mov.Imm(asm.R1, 0), asm.StoreMem(asm.R10, -8, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, 1), funcRef(asm.R2, "cb"), asm.Mov.Reg(asm.R3, asm.R10), asm.Add.Imm(asm.R3, -8), asm.Mov.Imm(asm.R4, 0),
		call(FnLoop), asm.LoadMem(asm.R0, asm.R10, -8, asm.DWord), asm.Return(),
		// the callback stores what bpf_tail_call returned through its ctx
		asm.Mov.Reg(asm.R6, asm.R2).WithSymbol("cb"), call(FnTailCall), asm.StoreMem(asm.R6, 0, asm.R0, asm.DWord), asm.Mov.Imm(asm.R0, 0), asm.Return())
	if v, err := cb.Run(m, nil); err != nil || int64(v) != -int64(E2BIG) {
		t.Fatalf("tail call from a callback: %d %v, want -E2BIG", int64(v), err)
	}
}

// A fault inside a bpf_loop callback names the callback's instruction.
func TestLoopCallbackFault(t *testing.T) {
	p := prog(t,
		asm.Mov.Imm(asm.R1, 10), funcRef(asm.R2, "cb"), asm.Mov.Imm(asm.R3, 0), asm.Mov.Imm(asm.R4, 0),
		call(FnLoop), asm.Return(),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.DWord).WithSymbol("cb"), asm.Return())
	_, err := run(t, p, nil)
	wantErr(t, err, ErrMemory, 7, "")
	// The callback counts against the budget, and so does each call.
	loop := prog(t,
		asm.Mov.Imm(asm.R1, 1<<20), funcRef(asm.R2, "cb"), asm.Mov.Imm(asm.R3, 0), asm.Mov.Imm(asm.R4, 0),
		call(FnLoop), asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("cb"), asm.Return())
	m := NewMachine()
	m.Budget = 10000
	_, err = loop.Run(m, nil)
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("%v", err)
	}
	// Nested callbacks hit the depth limit.
	deep := prog(t,
		asm.Mov.Imm(asm.R1, 1).WithSymbol("cb"), funcRef(asm.R2, "cb"), asm.Mov.Imm(asm.R3, 0), asm.Mov.Imm(asm.R4, 0),
		call(FnLoop), asm.Return())
	_, err = run(t, deep, nil)
	wantErr(t, err, ErrCallDepth, 5, "")
}

// Many goroutines, one Machine each, atomics on one shared word.
func TestConcurrentAtomics(t *testing.T) {
	word := alignedBuf(8)
	p := prog(t,
		asm.LoadMapValue(asm.R6, 0, 0), asm.Mov.Imm(asm.R7, 0),
		asm.Mov.Imm(asm.R2, 1).WithSymbol("l"),
		atomicInsn(asm.AddAtomic, asm.R6, asm.R2, asm.DWord, 0),
		asm.Add.Imm(asm.R7, 1), asm.JLT.Imm(asm.R7, 10000, "l"),
		asm.Return())
	p.Maps = []MapRef{{ValueAddr: uintptr(unsafe.Pointer(&word[0])), ValueSize: 8}}
	var wg sync.WaitGroup
	// User space adds to the same word at the same time.
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50000; i++ {
				atomic.AddUint64((*uint64)(unsafe.Pointer(&word[0])), 1)
			}
		}()
	}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := NewMachine()
			for i := 0; i < 5; i++ {
				if _, err := p.Run(m, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := *(*uint64)(unsafe.Pointer(&word[0])); got != 8*5*10000+2*50000 {
		t.Fatalf("total %d", got)
	}
}

func TestZeroAllocs(t *testing.T) {
	p := prog(t,
		asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R2, 0),
		asm.Add.Reg(asm.R0, asm.R2).WithSymbol("l"), storeImm(asm.RFP, -8, 1, asm.DWord),
		asm.Mov.Imm(asm.R1, 3), asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -8),
		call(FnGetPrandomU32), asm.Add.Imm(asm.R2, 1), asm.JLT.Imm(asm.R2, 100, "l"),
		asm.Return())
	m := NewMachine()
	ctx := make([]byte, 64)
	if _, err := p.Run(m, ctx); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { p.Run(m, ctx) }); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

// More ranges than maxRanges: the newest stay accessible, the oldest go.
func TestManyRanges(t *testing.T) {
	bufs := make([][]byte, maxRanges+10)
	for i := range bufs {
		bufs[i] = alignedBuf(8)
	}
	m := NewMachine()
	m.Helpers.Set(1000, func(m *Machine, i, _, _, _, _ uint64) (uint64, error) {
		a := uintptr(unsafe.Pointer(&bufs[i][0]))
		m.AllowRange(a, 8, true)
		return uint64(a), nil
	})
	m.Helpers.Set(1001, func(m *Machine, i, _, _, _, _ uint64) (uint64, error) {
		return uint64(uintptr(unsafe.Pointer(&bufs[i][0]))), nil
	})
	// for i in 0..n: lookup(i); then read bufs[n-1] and bufs[0] again
	p := prog(t,
		asm.Mov.Imm(asm.R6, 0),
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("l"), call(1000),
		asm.Add.Imm(asm.R6, 1), asm.JLT.Imm(asm.R6, int32(len(bufs)), "l"),
		asm.Mov.Imm(asm.R1, int32(len(bufs)-1)), call(1001), asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Mov.Imm(asm.R1, 0), call(1001), asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Return())
	_, err := p.Run(m, nil)
	wantErr(t, err, ErrMemory, 10, "") // bufs[0] was evicted; bufs[n-1] (insn 7) was fine
}
