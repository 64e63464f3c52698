// Package futextest lets tests see who sleeps on a futex, without waking
// anyone and without guessing with sleeps: it reads the system call each
// thread of a process is blocked in from /proc/PID/task/TID/syscall.
package futextest

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Sleepers counts the threads of process pid blocked in a shared
// FUTEX_WAIT (the private flag clear, as package futex waits) on addr, or
// on any address if addr is 0. The Go runtime's own futex waits are
// private and never counted.
func Sleepers(pid int, addr uintptr) int { return len(SleeperTIDs(pid, addr)) }

// SleeperTIDs lists the thread ids of the threads Sleepers counts.
func SleeperTIDs(pid int, addr uintptr) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var tids []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/syscall")
		if err != nil {
			continue
		}
		// "NR ARG1 ARG2 ..." for a blocked thread, "running" otherwise.
		f := strings.Fields(string(b))
		if len(f) < 3 || f[0] != strconv.Itoa(unix.SYS_FUTEX) {
			continue
		}
		a, err1 := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
		op, err2 := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 64)
		if err1 != nil || err2 != nil || op != 0 /* FUTEX_WAIT, shared */ {
			continue
		}
		if addr == 0 || uintptr(a) == addr {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				tids = append(tids, tid)
			}
		}
	}
	return tids
}

// Await returns once at least n threads of pid sleep as Sleepers counts
// them. It fails the test if that does not happen within a minute: the
// waiters never went to sleep on the word.
func Await(tb testing.TB, pid int, addr uintptr, n int) {
	tb.Helper()
	give := time.Now().Add(time.Minute)
	for Sleepers(pid, addr) < n {
		if time.Now().After(give) {
			tb.Fatalf("pid %d: %d threads asleep on futex %#x after a minute, want %d", pid, Sleepers(pid, addr), addr, n)
		}
		runtime.Gosched()
	}
}
