package programs

import (
	"fmt"

	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/vm"
)

// helperSpinLock is bpf_spin_lock: the very lock word user space takes
// with Map.WithLock and BPF_F_LOCK. The word must lie in memory the program
// may write (a map value it looked up), be 4-aligned, and the program may
// hold one lock at a time (the kernel's verifier rule; here checked at run
// time: a second lock is an error, not a deadlock).
func helperSpinLock(m *vm.Machine, addr, _, _, _, _ uint64) (uint64, error) {
	h := hostOf(m)
	if addr%4 != 0 || !m.CanAccess(addr, 4, true) {
		return 0, fmt.Errorf("bpf_spin_lock: %#x is not a lock in a map value the program may write", addr)
	}
	if m.HeldLock() != 0 {
		return 0, fmt.Errorf("bpf_spin_lock: the program already holds a lock")
	}
	l := (*lock.SpinLock)(addrPtr(addr))
	l.Lock(h.holder)
	m.SetHeldLock(addr)
	return 0, nil
}

func helperSpinUnlock(m *vm.Machine, addr, _, _, _, _ uint64) (uint64, error) {
	h := hostOf(m)
	if held := m.HeldLock(); held == 0 || held != addr {
		return 0, fmt.Errorf("bpf_spin_unlock: %#x is not the lock the program holds", addr)
	}
	m.SetHeldLock(0)
	(*lock.SpinLock)(addrPtr(addr)).Unlock()
	if len(h.g.refs) > 0 {
		h.graphUnlocked(m)
	}
	return 0, nil
}
