package vm

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// With Machine.LockTag set the VM takes a free bpf_spin_lock word and
// releases one without waiters itself, and leaves every other case to the
// helpers: a held word, a waiter bit, no tag.
func TestInlineSpinLocks(t *testing.T) {
	var locks, unlocks int
	m := NewMachine()
	m.Helpers.Set(FnSpinLock, func(m *Machine, a, _, _, _, _ uint64) (uint64, error) {
		locks++
		m.SetHeldLock(a)
		return 0, nil
	})
	m.Helpers.Set(FnSpinUnlock, func(m *Machine, a, _, _, _, _ uint64) (uint64, error) {
		unlocks++
		m.SetHeldLock(0)
		return 0, nil
	})
	// lock ctx[0:4]; R7 = the word while held; store R8 into the word if
	// R8 != 0 (a waiter arriving); unlock; return R7.
	p := prog(t,
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R8, asm.R6, 8, asm.Word),
		call(FnSpinLock),
		asm.LoadMem(asm.R7, asm.R6, 0, asm.Word),
		asm.JEq.Imm(asm.R8, 0, "unlock"),
		asm.StoreMem(asm.R6, 0, asm.R8, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("unlock"),
		call(FnSpinUnlock),
		asm.Mov.Reg(asm.R0, asm.R7),
		asm.Return())
	ctx := make([]byte, 16)
	run := func(word, waiter uint32) uint64 {
		t.Helper()
		binary.NativeEndian.PutUint32(ctx, word)
		binary.NativeEndian.PutUint32(ctx[8:], waiter)
		locks, unlocks = 0, 0
		v, err := p.Run(m, ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	m.LockTag = 7
	if v := run(0, 0); v != 7 || locks != 0 || unlocks != 0 || binary.NativeEndian.Uint32(ctx) != 0 || m.HeldLock() != 0 {
		t.Fatalf("free lock: word while held %d, helper calls %d/%d, word after %d, held %#x; want 7, 0/0, 0, 0",
			v, locks, unlocks, binary.NativeEndian.Uint32(ctx), m.HeldLock())
	}
	if run(5, 0); locks != 1 || unlocks != 1 {
		t.Fatalf("a word another owner holds: helper calls %d/%d, want 1/1", locks, unlocks)
	}
	if run(0, 7|1<<31); locks != 0 || unlocks != 1 {
		t.Fatalf("a waiter bit at unlock: helper calls %d/%d, want 0/1", locks, unlocks)
	}
	m.SlowUnlock = true
	if run(0, 0); locks != 0 || unlocks != 1 {
		t.Fatalf("SlowUnlock: helper calls %d/%d, want 0/1", locks, unlocks)
	}
	m.SlowUnlock = false
	m.LockTag = 0
	if run(0, 0); locks != 1 || unlocks != 1 {
		t.Fatalf("no LockTag: helper calls %d/%d, want 1/1", locks, unlocks)
	}
}
