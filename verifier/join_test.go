package verifier_test

import (
	"errors"
	"testing"

	"github.com/userbpf/userbpf/verifier"
	"github.com/userbpf/userbpf/vm"
)

// objOnBranches allocates an object on each side of a branch, into R6 on
// one side and R7 on the other (the other register is NULL there), then
// drops R6 if set and, with dropBoth, R7 if set. The join must keep both
// references (each maybe NULL): one left unreleased is a leak. The C
// versions of the joins clang writes are testdata/verifier/
// good_list_pop_join.c and good_remove_null_join.c.
func objOnBranches(dropBoth bool) *verifier.Program {
	obj := &verifier.ObjType{Name: "o", Size: 16}
	alloc := func(into, other uint8) []vm.Insn {
		return cat(ldImm64(1, 0), mov(2, 0), vm.Insn{Op: 0x85, Src: vm.CallKfunc}, movX(into, 0), mov(other, 0), mov(0, 0))
	}
	drop := func(r uint8) []vm.Insn {
		return cat(jeq(r, 0, 3), movX(1, r), mov(2, 0), vm.Insn{Op: 0x85, Src: vm.CallKfunc})
	}
	insns := cat(
		vm.Insn{Op: 0x61, Dst: 2, Src: 1}, // r2 = *(u32 *)ctx
		jeq(2, 0, 8),                      // 1: to the second allocation
		alloc(6, 7),                       // 2..8 (the call at 5)
		ja(7),                             // 9: to the join
		alloc(7, 6),                       // 10..16 (the call at 13)
		drop(6),                           // 17..20 (the join)
	)
	if dropBoth {
		insns = cat(insns, drop(7))
	}
	insns = cat(insns, mov(0, 0), exit())
	p := &verifier.Program{Name: "obj_on_branches", Insns: insns,
		Kfuncs:   map[int]string{5: "bpf_obj_new_impl", 13: "bpf_obj_new_impl", 20: "bpf_obj_drop_impl"},
		ObjTypes: map[int]*verifier.ObjType{2: obj, 10: obj}}
	if dropBoth {
		p.Kfuncs[24] = "bpf_obj_drop_impl"
	}
	return p
}

// TestJoinKeepsReferencesApart: two references in different registers are
// not unified at a join; both must be released.
func TestJoinKeepsReferencesApart(t *testing.T) {
	err := verifier.Verify(objOnBranches(false), nil)
	if !errors.Is(err, verifier.ErrRefLeak) {
		t.Fatalf("one of two references dropped: got %v, want ErrRefLeak", err)
	}
	t.Log(err)
	if err := verifier.Verify(objOnBranches(true), nil); err != nil {
		t.Fatalf("both references dropped: %v", err)
	}
}

// TestJoinLoopPointerConverges: a pointer stepped by a constant in a loop
// (p -= 8 here; testdata/verifier/good_loop_ptr.c has clang's p += 8) has
// an unbounded variable offset at the loop head after widening, whose
// constant part means nothing. The join must not keep that constant part
// (or the stale upper bound): it changes on every iteration and the
// analysis would never reach a fixpoint (ErrTooComplex after 1 M steps).
func TestJoinLoopPointerConverges(t *testing.T) {
	insns := cat(
		vm.Insn{Op: 0x61, Dst: 2, Src: 1},  // 0: r2 = *(u32 *)ctx
		movX(1, 10),                        // 1: r1 = r10
		vm.Insn{Op: 0x07, Dst: 1, Imm: -8}, // 2: r1 += -8
		vm.Insn{Op: 0x0f, Dst: 1, Src: 2},  // 3: r1 += r2 (variable offset)
		mov(3, 0),                          // 4: r3 = 0
		vm.Insn{Op: 0x7b, Dst: 1, Src: 3},  // 5: *(u64 *)r1 = r3 (the loop head)
		vm.Insn{Op: 0x07, Dst: 1, Imm: -8}, // 6: r1 += -8
		vm.Insn{Op: 0x07, Dst: 2, Imm: -1}, // 7: r2 += -1
		vm.Insn{Op: 0x55, Dst: 2, Off: -4}, // 8: if r2 != 0 goto 5
		mov(0, 0), exit(),
	)
	err := verifier.Verify(&verifier.Program{Name: "loop_ptr_down", Insns: insns}, nil)
	if err != nil {
		t.Fatalf("a pointer stepped down in a loop: %v", err)
	}
}
