// Package vm runs eBPF programs: an interpreter for the whole ISA of RFC
// 9669 (ALU and ALU32, JMP and JMP32, loads and stores of every size incl.
// sign-extending loads, 64-bit immediates, atomics, calls to helpers and to
// bpf-to-bpf subprograms, exit) over memory it checks at run time.
//
// A program may touch only its stack, its context, and the memory ranges
// its helpers hand it (map values, ring-buffer records); anything else
// stops the run with an error naming the instruction. Nothing a program
// does can crash the host process or write elsewhere in the region.
//
// The package knows nothing about maps or regions: a Program carries
// opaque map references, and helpers (numbered as the kernel's) are Go
// functions the host installs in a HelperTable.
package vm
