package lock

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/userbpf/userbpf/internal/futex"
)

// Liveness checks start after firstCheck of sleeping and back off to
// maxCheck, so a long but legitimate critical section costs its waiters at
// most one liveness probe per maxCheck. They are variables only so that
// tests can stretch them (export_test.go); nothing else changes them.
var (
	firstCheck = 2 * time.Millisecond
	maxCheck   = 50 * time.Millisecond
)

// acquire takes the lock word w for h. It spins for spins rounds, then
// sleeps on the futex. deadline, if non-zero, bounds the wait; acquire then
// returns ok=false when it passes. recovered is true when the lock was taken
// over from a dead owner.
func acquire(w *atomic.Uint32, h *Holder, spins int, kind Kind, deadline time.Time) (recovered, ok bool) {
	h.checkTag()
	for i := 0; i < spins; i++ {
		v := w.Load()
		if v == 0 && w.CompareAndSwap(0, h.Tag) {
			return false, true
		}
		if i&15 == 15 {
			runtime.Gosched()
		}
	}
	check := firstCheck
	var owner uint32  // the holder this waiter is waiting on
	var due time.Time // when to ask whether owner still lives
	for {
		v := w.Load()
		if v == 0 {
			// Other waiters may sleep: keep the bit so our unlock wakes one.
			if w.CompareAndSwap(0, h.Tag|WaitersBit) {
				return false, true
			}
			continue
		}
		if v&WaitersBit == 0 {
			if !w.CompareAndSwap(v, v|WaitersBit) {
				continue
			}
			v |= WaitersBit
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return false, false
		}
		// The probe is due by the clock, not by how futex.Wait returned: a
		// waiter woken again and again while the same owner holds the word
		// (wake-ups meant for others, WakeAll) must still find a dead one.
		// A new owner gets a whole interval before it is probed.
		if tag := v & TagMask; tag != owner {
			owner, due = tag, now.Add(check)
		} else if !now.Before(due) {
			if h.Owners != nil && !h.Owners.Alive(tag) {
				if w.CompareAndSwap(v, h.Tag|WaitersBit) {
					h.Owners.NoteRecovery(kind)
					return true, true
				}
				continue
			}
			check = min(2*check, maxCheck)
			due = now.Add(check)
		}
		sleep := due.Sub(now)
		if !deadline.IsZero() {
			sleep = min(sleep, deadline.Sub(now))
		}
		futex.Wait(w, v, sleep)
	}
}

// release unlocks w and wakes one sleeper if any may be waiting.
func release(w *atomic.Uint32) {
	if w.Swap(0)&WaitersBit != 0 {
		futex.Wake(w, 1)
	}
}
