package lock

import (
	"sync/atomic"
	"time"
)

// mutexSpinRounds is short: a Mutex guards long sections, so a waiter
// sleeps almost at once rather than burn a CPU its owner may need.
const mutexSpinRounds = 16

var noDeadline time.Time

// Mutex is a robust, owner-aware mutex in shared memory (4 bytes, zero value
// unlocked). Unlike a SpinLock, taking it over from a dead owner is reported
// to the new holder, which must then check and repair the data it guards
// (like EOWNERDEAD for a robust pthread mutex).
type Mutex struct {
	w atomic.Uint32
}

// Lock takes the mutex. recovered is true when the previous owner died while
// holding it: the caller holds the mutex and must repair what it protects.
func (m *Mutex) Lock(h *Holder) (recovered bool) {
	if m.w.CompareAndSwap(0, h.Tag) && h.Tag != 0 {
		return false
	}
	return m.lockSlow(h)
}

// lockSlow is Lock's contended path, kept out of line so that Lock inlines
// (its cost is exactly at the inliner's budget: check with -gcflags=-m
// after any change). It also rejects a zero tag the fast path let through.
//
//go:noinline
func (m *Mutex) lockSlow(h *Holder) (recovered bool) {
	recovered, _ = acquire(&m.w, h, mutexSpinRounds, KindMutex, noDeadline)
	return recovered
}

// LockTimeout is Lock with a bound on the wait; ok is false if the mutex
// could not be taken within d.
func (m *Mutex) LockTimeout(h *Holder, d time.Duration) (recovered, ok bool) {
	if m.w.CompareAndSwap(0, h.Tag) && h.Tag != 0 {
		return false, true
	}
	return acquire(&m.w, h, mutexSpinRounds, KindMutex, time.Now().Add(d))
}

// Unlock releases the mutex.
func (m *Mutex) Unlock() { release(&m.w) }

// Owner returns the tag of the current holder, or 0 if the mutex is free.
func (m *Mutex) Owner() uint32 { return m.w.Load() & TagMask }
