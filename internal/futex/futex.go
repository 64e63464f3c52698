// Package futex wraps the futex(2) wait and wake operations for words that
// live in memory shared between processes.
//
// The private flag (FUTEX_PRIVATE_FLAG) is never used: the kernel must key a
// wait on the backing file page, not on this process's address space, so
// that a waiter in one process is woken by a waker in another.
package futex

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opWait = 0 // FUTEX_WAIT
	opWake = 1 // FUTEX_WAKE
)

// Wait sleeps while *addr == val, for at most timeout (forever if timeout <= 0).
//
// It returns true if it was woken, or the word no longer held val when the
// call began (EAGAIN); callers always re-check their condition. It returns
// false only when the timeout expired. A signal interrupts a timed
// FUTEX_WAIT with EINTR even under SA_RESTART; Wait then sleeps on for the
// time left, so that a caller which checks something on "false" (a lock's
// holder still alive?) is not put off indefinitely by a stream of signals.
// Any other error from the kernel is a programming error on our side (bad
// or misaligned address) and reported as a wake, so callers re-check.
func Wait(addr *atomic.Uint32, val uint32, timeout time.Duration) bool {
	var end time.Time
	if timeout > 0 {
		end = time.Now().Add(timeout)
	}
	for {
		var tsp unsafe.Pointer
		var ts unix.Timespec
		if timeout > 0 {
			ts = unix.NsecToTimespec(int64(timeout))
			tsp = unsafe.Pointer(&ts)
		}
		_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWait,
			uintptr(val), uintptr(tsp), 0, 0)
		switch errno {
		case unix.EINTR:
			if timeout > 0 {
				if timeout = time.Until(end); timeout <= 0 {
					return false
				}
			}
		case unix.ETIMEDOUT:
			return false
		default: // 0 (woken), EAGAIN (*addr != val), or our bug
			return true
		}
	}
}

// Wake wakes at most n waiters sleeping on addr, in any process, and returns
// how many were woken.
func Wake(addr *atomic.Uint32, n int) int {
	for {
		r, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake,
			uintptr(n), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0
		}
		return int(r)
	}
}

// WakeAll wakes every waiter sleeping on addr.
func WakeAll(addr *atomic.Uint32) int { return Wake(addr, 1<<30) }
