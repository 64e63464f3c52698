package lock

import "sync/atomic"

// spinRounds is how long SpinLock spins before it sleeps. Value-lock critical
// sections are a few instructions long, so a waiter on another CPU almost
// always gets the lock while spinning.
const spinRounds = 256

// SpinLock is the 4-byte value lock, layout-compatible with the kernel's
// struct bpf_spin_lock. The zero value is unlocked. It is used in place, in
// region memory: cast a pointer to the lock field of a value to *SpinLock.
type SpinLock struct {
	w atomic.Uint32
}

// Lock takes the lock, spinning briefly and then sleeping on its futex. It
// returns true if the lock was taken over from a dead owner.
func (l *SpinLock) Lock(h *Holder) (recovered bool) {
	if l.w.CompareAndSwap(0, h.Tag) && h.Tag != 0 {
		return false
	}
	return l.lockSlow(h)
}

// lockSlow is Lock's contended path, kept out of line so that Lock inlines
// (its cost is exactly at the inliner's budget: check with -gcflags=-m
// after any change). It also rejects a zero tag the fast path let through.
//
//go:noinline
func (l *SpinLock) lockSlow(h *Holder) (recovered bool) {
	recovered, _ = acquire(&l.w, h, spinRounds, KindSpin, noDeadline)
	return recovered
}

// TryLock takes the lock if it is free and reports whether it did.
func (l *SpinLock) TryLock(h *Holder) bool {
	h.checkTag()
	return l.w.CompareAndSwap(0, h.Tag)
}

// Unlock releases the lock. Unlocking a lock one does not hold is a bug the
// lock does not detect (as with bpf_spin_unlock).
func (l *SpinLock) Unlock() { release(&l.w) }

// Owner returns the tag of the current holder, or 0 if the lock is free.
func (l *SpinLock) Owner() uint32 { return l.w.Load() & TagMask }
