package vm

import "sync/atomic"

// HeldLock returns the address of the bpf_spin_lock word the running
// program holds, or 0.
func (m *Machine) HeldLock() uint64 { return m.held }

// SetHeldLock records the lock the program now holds (0: none), for the
// host's spin-lock helpers.
func (m *Machine) SetHeldLock(addr uint64) { m.held = addr }

// inlineSpinLocks marks bpf_spin_lock and bpf_spin_unlock calls, so that
// fast can take a free lock and release an uncontended one itself (when
// the host set Machine.LockTag): a helper call for each costs more than
// the compare-and-swap. Whatever fast leaves goes to the helper.
func inlineSpinLocks(c *code) {
	for i, x := range c.insns {
		if x.op != opCallHelper {
			continue
		}
		switch x.imm {
		case FnSpinLock:
			c.insns[i].op = opCallSpinLock
		case FnSpinUnlock:
			c.insns[i].op = opCallSpinUnlock
		}
	}
}

// tryLock takes the free lock word at a for the machine (fast's path).
// The caller checked that a is 4-aligned writable memory.
func (m *Machine) tryLock(a uint64) bool {
	return (*atomic.Uint32)(ptr(a)).CompareAndSwap(0, m.LockTag)
}

// tryUnlock releases the lock word at a if it holds the machine's tag and
// no waiter (a waiter needs a wake-up: the helper's job).
func (m *Machine) tryUnlock(a uint64) bool {
	return (*atomic.Uint32)(ptr(a)).CompareAndSwap(m.LockTag, 0)
}
