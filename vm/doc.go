// Package vm runs eBPF programs: an interpreter for the whole ISA of RFC
// 9669 (ALU and ALU32, JMP and JMP32, loads and stores of every size incl.
// sign-extending loads, 64-bit immediates, atomics incl. load-acquire and
// store-release, calls to helpers, kfuncs and bpf-to-bpf subprograms,
// exit, may_goto and the legacy packet loads) over memory it checks at
// run time.
//
// A program may touch only its stack, its context, the global data its
// MapRefs describe, and the memory ranges its helpers hand it (map
// values, ring-buffer records); anything else stops the run with an
// *Error naming the instruction. Nothing a program does can crash the
// host process or write elsewhere in the region.
//
// The package knows nothing about maps or regions: a Program carries
// opaque map references, and helpers (numbered as the kernel's) are Go
// functions the host installs in a HelperTable.
//
// # Running
//
// A Machine holds the state of a run (stack frames, call frames, memory
// ranges) and is reused, so a steady-state Run allocates nothing. Give
// each goroutine its own Machine; any number of goroutines may run the
// same Program at once:
//
//	m := vm.NewMachine()        // default helpers, this process's ids
//	m.CPU = cpu                 // bpf_get_smp_processor_id
//	r0, err := prog.Run(m, ctx) // R1 = &ctx[0]; ctx is readable and writable
//
// R10 points at the top of a 512-byte frame; each bpf-to-bpf call or
// callback gets a fresh frame below it, up to MaxCallDepth frames. The
// stack is not cleared between runs: the kernel's verifier rejects reads
// of uninitialized stack, and this interpreter does not (yet) verify.
// Machine.Budget bounds the instructions of a run (DefaultBudget).
//
// # Helpers
//
// A helper is a HelperFunc, func(m *Machine, r1, r2, r3, r4, r5 uint64)
// (uint64, error), installed by number: m.Helpers.Set(vm.FnMapLookupElem,
// f). DefaultHelpers has those that need no maps. Helpers return kernel
// results in R0 (negative errno on failure, see Errno) and use the error
// only for what the kernel's verifier would have rejected or for host
// failures; it stops the run. During a call a helper may:
//
//   - decode a map argument: m.Map(r1) returns the MapRef.Handle of a
//     PseudoMapFD reference (MapRefBase+i) or of a reference it created
//     with m.NewMapRef (DynMapRefBase+i, for inner maps);
//   - read or write pointer arguments with m.Bytes(addr, size, write),
//     which checks that the program may access them;
//   - hand the program memory: m.AllowRange(addr, size, writable) for
//     the rest of the run (a looked-up value, a reserved record), and take
//     it back with m.RevokeRange(addr) (after a submit or discard);
//   - call a callback the program passed (a PseudoFunc value,
//     FuncRefBase+pc) with m.CallFunc, as bpf_loop does;
//   - replace the program, as bpf_tail_call does, with m.TailCall;
//   - find the host's per-run state in m.Host.
//
// Kfuncs work the same way through Machine.Kfuncs.
//
// # Memory model
//
// Registers hold real host addresses. Loads and stores are plain machine
// accesses; BPF_ATOMIC instructions are sync/atomic operations on the
// target word (naturally aligned, as the kernel requires), so programs
// and user-space code agree on shared counters and lock words.
package vm
