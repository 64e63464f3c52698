// Package maps implements eBPF maps in a region: one generic command layer
// (validation order, flags, access modes, freeze, value copies that skip the
// lock word, errno) and one ops table per map type, as kernel/bpf does with
// syscall.c and bpf_map_ops.
//
// Adding a map type means one new file with its ops and one line in the
// registry (registry.go).
//
// Every command returns the kernel's errno for the kernel's mistakes, as a
// sentinel that matches the errno under errors.Is (see errors.go). Where
// userbpf deliberately goes beyond the kernel (a bpf_spin_lock in LRU hash
// values, user space taking the value lock, atomics on values), docs/semantics.md
// says so.
package maps
