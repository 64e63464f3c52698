// Package lock implements the two owner-aware locks of userbpf, both built on
// one 32-bit word that may live in memory shared by many processes:
//
//   - SpinLock, layout-compatible with the kernel's struct bpf_spin_lock
//     (4 bytes, zero means unlocked). It is the lock inside map values: the
//     VM's bpf_spin_lock helper and user space take the same word.
//   - Mutex, for longer user-space critical sections (region metadata). It
//     sleeps almost at once and reports to the new holder that the previous
//     owner died, so the holder can repair what it protects.
//
// # Word layout
//
//	 31  30                                0
//	+---+-----------------------------------+
//	| W |   owner tag (0 = unlocked)         |
//	+---+-----------------------------------+
//
// W is set when a waiter may be sleeping on the word's futex; the unlocker
// then wakes one. The owner tag names the holding process (see Owners); it is
// never zero and never uses bit 31.
//
// # Dead owners
//
// A waiter that has slept for a while asks Owners whether the tag in the word
// still names a live process. If not, it takes the lock over with one CAS
// from the dead owner's value to its own, and the recovery is reported with
// Owners.NoteRecovery. Two waiters may both find the owner dead; exactly one
// CAS succeeds.
package lock
