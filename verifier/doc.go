// Package verifier checks eBPF programs statically before they are stored
// in a region, with the rules of the kernel's verifier that matter for
// userbpf: control flow (every instruction reachable, jumps and calls
// inside the program, bounded call depth), initialised registers and stack,
// helper and kfunc argument kinds, NULL checks of map lookups, the
// bpf_spin_lock discipline, and ownership of graph-container objects
// (bpf_obj_new, lists and rbtrees guarded by a lock).
//
// The analysis is an abstract interpretation over the control-flow graph:
// each instruction's state (the kind of every register and stack slot, the
// held lock, the acquired references) is the join of the states that reach
// it, iterated to a fixpoint. Loops are allowed: the VM's instruction
// budget bounds them at run time. What the verifier cannot prove (a map
// value accessed at a variable offset, a context field's bounds) the VM
// checks at run time; docs/semantics.md lists where this differs from the
// kernel.
//
// Errors are *Error values naming the instruction, its source line (from
// BTF line info) and what was expected; errors.Is matches them against the
// sentinel of their class (ErrUninitReg, ErrNullCheck, ErrLockHeld, …).
package verifier
