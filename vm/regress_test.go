package vm

// Regression tests from a review of the interpreter's fast paths: a tail
// call from a subprogram must not leave the callee's hot range to the
// caller, a callback may start only where a PseudoFunc load points, a
// panic in RunEach's after is the caller's, and the budget and the code
// are exact across fused pairs and subprogram tail calls.

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

func forged(pc uint64) int64 { v := FuncRefBase + pc; return int64(v) }

// R1: after a tail call from a subprogram, the target's global data stays
// the hot range when the subprogram returns: the caller may then load and
// store the other program's .data through fast, which CanAccess refuses.
func TestRegressHotRangeLeaksAcrossSubprogTailCall(t *testing.T) {
	bdata := alignedBuf(16)
	// B: r0 = &B.data; *(u64 *)r0 (slow path: B.data becomes hot); exit with r0
	b := prog(t, asm.LoadMapValue(asm.R0, 0, 0), asm.LoadMem(asm.R2, asm.R0, 0, asm.DWord), asm.Return())
	b.Maps = []MapRef{{ValueAddr: uintptr(unsafe.Pointer(&bdata[0])), ValueSize: 16}}
	m := NewMachine()
	m.Helpers.Set(FnTailCall, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		m.TailCall(b)
		return 0, nil
	})
	// A: call sub; *(u64 *)(r0) = 0x77 (B's .data, which A was never given); exit
	a := prog(t,
		asm.Call.Label("sub"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.Mov.Imm(asm.R7, 0x77), asm.StoreMem(asm.R6, 0, asm.R7, asm.DWord),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		call(FnTailCall).WithSymbol("sub"), asm.Return())
	_, err := a.Run(m, nil)
	if bdata[0] == 0x77 {
		t.Errorf("A wrote B's global data through the stale hot range (err %v)", err)
	}
	if !errors.Is(err, ErrMemory) {
		t.Errorf("got %v, want ErrMemory (CanAccess from A: %v)", err, false)
	}
}

// R1 control: the same A and B, but B does not touch its data before
// returning the pointer: A's store now faults. Whether A may write B's
// .data depends on what B did last.
func TestRegressHotRangeControl(t *testing.T) {
	bdata := alignedBuf(16)
	b := prog(t, asm.LoadMapValue(asm.R0, 0, 0), asm.Return())
	b.Maps = []MapRef{{ValueAddr: uintptr(unsafe.Pointer(&bdata[0])), ValueSize: 16}}
	m := NewMachine()
	m.Helpers.Set(FnTailCall, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		m.TailCall(b)
		return 0, nil
	})
	a := prog(t,
		asm.Call.Label("sub"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.Mov.Imm(asm.R7, 0x77), asm.StoreMem(asm.R6, 0, asm.R7, asm.DWord),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		call(FnTailCall).WithSymbol("sub"), asm.Return())
	_, err := a.Run(m, nil)
	t.Logf("B did not touch its data: A's store: %v (byte %#x)", err, bdata[0])
}

// R2: a forged callback reference (FuncRefBase+pc of an unmarked
// instruction) enters right at an inlined ARRAY lookup with R1 = the loop
// index: the helper would refuse R1, the inlined lookup hands out a value.
func TestRegressForgedCallbackIntoInlinedLookup(t *testing.T) {
	vals := alignedBuf(4 * 16)
	layout := &ArrayLayout{First: uintptr(unsafe.Pointer(&vals[0])), Stride: 16, Len: 4, ValueSize: 16}
	helperCalls := 0
	m := NewMachine()
	m.Helpers.Set(FnMapLookupElem, func(m *Machine, r1, _, _, _, _ uint64) (uint64, error) {
		helperCalls++
		if r1 != MapRefBase {
			return 0, errors.New("R1 is not a map")
		}
		return 0, nil
	})
	// main: key 0 at fp-4; bpf_loop(1, FuncRefBase+L, fp-4, 0); exit r0
	// L-1: r1 = map; L: call lookup (only reachable with R1 = map by fallthrough)
	insns := []asm.Instruction{
		asm.Mov.Imm(asm.R7, 0), asm.StoreMem(asm.R10, -4, asm.R7, asm.Word), // 0
		asm.Mov.Imm(asm.R1, 1),                     // 1
		asm.LoadImm(asm.R2, forged(13), asm.DWord), // 2,3: forged ref to insn 12
		asm.Mov.Reg(asm.R3, asm.R10),               // 4
		asm.Add.Imm(asm.R3, -4),                    // 5
		asm.Mov.Imm(asm.R4, 0),                     // 6
		call(FnLoop),                               // 7
		asm.Mov.Imm(asm.R0, 0),                     // 8
		asm.Return(),                               // 9
		asm.LoadMapPtr(asm.R1, 0),                  // 10,11
		call(FnMapLookupElem),                      // 12: callback entry: R1 = index 0, R2 = fp-4 of main
		asm.Mov.Imm(asm.R7, 0x66), asm.StoreMem(asm.R0, 0, asm.R7, asm.DWord),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return(),
	}
	p := prog(t, insns...)
	p.Maps = []MapRef{{Handle: "array", Array: layout}}
	if op := p.prepared().insns[13].op; op != opCallArrayLookup {
		t.Fatalf("not inlined: %d", op)
	}
	_, err := p.Run(m, nil)
	if vals[0] == 0x66 || err == nil {
		t.Errorf("a callback entered with R1 = 0 got an array value (write landed: %v, helper calls %d, err %v); the helper would refuse R1", vals[0] == 0x66, helperCalls, err)
	}
}

// R3: a panic in RunEach's after (host code) is taken for a helper panic:
// after runs again with ErrPanic and the run is counted twice.
func TestRegressRunEachPanicInAfter(t *testing.T) {
	p := prog(t, asm.Mov.Imm(asm.R0, 1), asm.Return())
	m := NewMachine()
	calls := 0
	var errs []error
	runs := func() (runs int) {
		defer func() { recover() }()
		return p.RunEach(m, nil, 5, func(r0 uint64, err error) bool {
			calls++
			errs = append(errs, err)
			if calls == 2 {
				panic("host bug in after")
			}
			return true
		})
	}()
	if calls != 2 {
		t.Errorf("after called %d times for 2 runs (errors %v), runs reported %d", calls, errs, runs)
	}
}

// Budget: a straight line of fused pairs stops exactly at instruction k
// with budget k, for every k; inside a bpf_loop callback too.
func TestRegressFusedBudgetEdges(t *testing.T) {
	var body []asm.Instruction
	for i := 0; i < 6; i++ {
		body = append(body, asm.Mov.Reg(asm.R2, asm.R1), asm.Add.Imm(asm.R2, int32(i)))
	}
	body = append(body, asm.Mov.Reg(asm.R0, asm.R2), asm.Return())
	p := prog(t, body...)
	n := len(body)
	for k := 1; k <= n; k++ {
		m := NewMachine()
		m.Budget = uint64(k)
		_, err := p.Run(m, nil)
		if k < n {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrBudget) || e.PC != k {
				t.Errorf("budget %d: %v, want ErrBudget at %d", k, err, k)
			}
		} else if err != nil || m.Remaining() != 0 {
			t.Errorf("budget %d: %v, %d left", k, err, m.Remaining())
		}
	}
}

// After a tail call from a subprogram, the caller's bpf_loop callback
// (past the end of the tail-called program) and its inlined lookups (on
// its own maps) still work: m.code is restored.
func TestRegressCodeRestoredAfterSubprogTailCall(t *testing.T) {
	b := prog(t, asm.Mov.Imm(asm.R0, 5), asm.Return())
	m := NewMachine()
	m.Helpers.Set(FnTailCall, func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		m.TailCall(b)
		return 0, nil
	})
	vals := alignedBuf(16)
	vals[0] = 9
	layout := &ArrayLayout{First: uintptr(unsafe.Pointer(&vals[0])), Stride: 8, Len: 2, ValueSize: 8}
	a := prog(t,
		asm.Call.Label("sub"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.Mov.Imm(asm.R7, 0), asm.StoreMem(asm.R10, -8, asm.R7, asm.DWord),
		asm.Mov.Imm(asm.R1, 1), funcRef(asm.R2, "cb"), asm.Mov.Reg(asm.R3, asm.R10), asm.Add.Imm(asm.R3, -8), asm.Mov.Imm(asm.R4, 0),
		call(FnLoop),
		asm.LoadMem(asm.R0, asm.R10, -8, asm.DWord), asm.Add.Reg(asm.R0, asm.R6),
		asm.Return(),
		call(FnTailCall).WithSymbol("sub"), asm.Return(),
		asm.Mov.Reg(asm.R6, asm.R2).WithSymbol("cb"),
		asm.Mov.Imm(asm.R7, 0), asm.StoreMem(asm.R10, -4, asm.R7, asm.Word), asm.Mov.Reg(asm.R2, asm.R10), asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, 0), call(FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord), asm.StoreMem(asm.R6, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return())
	a.Maps = []MapRef{{Handle: "array", Array: layout}}
	if v, err := a.Run(m, nil); err != nil || v != 14 {
		t.Fatalf("got %d, %v; want 14", v, err)
	}
}
