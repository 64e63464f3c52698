// Package userbpf is the Linux eBPF map subsystem rebuilt in user space.
//
// Maps live in a shared-memory region (a file, by default under
// /dev/shm/userbpf) that any number of processes attach to. They use the
// same maps at memory speed, with value locks, atomics, grace periods and
// wake-ups that work across processes.
//
// This package is the public API. Lower layers, bottom up:
//
//	shm      the region: file, mapping, header, allocator, process table
//	lock     the value lock (bpf_spin_lock layout) and a robust mutex
//	rcu      epoch RCU across processes: read sections, Synchronize, Retire
//
// A process attaches with CreateRegion or OpenRegion and detaches with Close.
package userbpf
