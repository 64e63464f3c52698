package futex_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/internal/futex"
	"github.com/userbpf/userbpf/internal/futex/futextest"
	"github.com/userbpf/userbpf/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

func self(w *atomic.Uint32) (int, uintptr) { return os.Getpid(), uintptr(unsafe.Pointer(w)) }

func TestWaitTimeout(t *testing.T) {
	var w atomic.Uint32
	if futex.Wait(&w, 0, time.Millisecond) {
		t.Fatal("Wait on an unchanged word with nobody waking it returned true, want false (timeout)")
	}
}

// TestWaitValueDiffers: a word that no longer holds val returns at once
// (EAGAIN) and counts as a wake-up. Were EAGAIN mistaken for a timeout,
// Wait would return false after the minute.
func TestWaitValueDiffers(t *testing.T) {
	var w atomic.Uint32
	w.Store(1)
	if !futex.Wait(&w, 0, time.Minute) {
		t.Fatal("Wait(val 0) on a word holding 1 returned false, want true")
	}
}

// TestWaitSignal: a signal handled by the sleeping thread interrupts a
// timed FUTEX_WAIT with EINTR (even with SA_RESTART, which Go uses). Wait
// must sleep on for the rest of its timeout and report the timeout: callers
// use "false" as "time to check whether the holder is alive", which a
// steady stream of signals must not postpone forever.
func TestWaitSignal(t *testing.T) {
	var w atomic.Uint32
	res := make(chan bool)
	go func() { res <- futex.Wait(&w, 0, time.Second) }()
	pid, addr := self(&w)
	futextest.Await(t, pid, addr, 1)
	for _, tid := range futextest.SleeperTIDs(pid, addr) {
		// SIGURG: the runtime's preemption signal, ignored when there is
		// nothing to preempt (the goroutine is in a system call).
		if err := unix.Tgkill(pid, tid, unix.SIGURG); err != nil {
			t.Fatal(err)
		}
	}
	if <-res {
		t.Fatal("Wait returned true (woken), but nobody woke it and the word never changed: EINTR taken for a wake-up")
	}
}

func TestWakeNobody(t *testing.T) {
	var w atomic.Uint32
	if n := futex.Wake(&w, 1); n != 0 {
		t.Fatalf("Wake with no waiter woke %d", n)
	}
	if n := futex.WakeAll(&w); n != 0 {
		t.Fatalf("WakeAll with no waiter woke %d", n)
	}
}

// TestWakeWakesSleeper: a sleeper without a timeout returns true once
// woken, although its word never changed.
func TestWakeWakesSleeper(t *testing.T) {
	var w atomic.Uint32
	done := make(chan bool)
	go func() { done <- futex.Wait(&w, 0, 0) }()
	pid, addr := self(&w)
	futextest.Await(t, pid, addr, 1)
	if n := futex.Wake(&w, 1); n != 1 {
		t.Fatalf("Wake woke %d, want the 1 sleeper", n)
	}
	if !<-done {
		t.Fatal("woken Wait returned false")
	}
}

// TestWakeCounts: Wake(n) wakes at most n; WakeAll wakes the rest.
func TestWakeCounts(t *testing.T) {
	const sleepers = 3
	var w atomic.Uint32
	var wg sync.WaitGroup
	for range sleepers {
		wg.Go(func() { futex.Wait(&w, 0, 0) })
	}
	pid, addr := self(&w)
	futextest.Await(t, pid, addr, sleepers)
	if n := futex.Wake(&w, 1); n != 1 {
		t.Fatalf("Wake(1) with %d sleepers woke %d", sleepers, n)
	}
	if n := futex.WakeAll(&w); n != sleepers-1 {
		t.Fatalf("WakeAll woke %d, want the %d left", n, sleepers-1)
	}
	wg.Wait()
}

// sharedWord maps the first page of file MAP_SHARED and returns its
// first word.
func sharedWord(tb testing.TB, file string) *atomic.Uint32 {
	tb.Helper()
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(4096); err != nil {
		tb.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Munmap(mem) })
	return (*atomic.Uint32)(unsafe.Pointer(&mem[0]))
}

// sleeper: FILE — print "asleep" and sleep on the file's first word
// (holding 0) until woken; print "woken VALUE".
var _ = proctest.Register("sleeper", func(args []string) error {
	f, err := os.OpenFile(args[0], os.O_RDWR, 0)
	if err != nil {
		return err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	w := (*atomic.Uint32)(unsafe.Pointer(&mem[0]))
	proctest.Ready("asleep")
	if !futex.Wait(w, 0, 0) {
		return fmt.Errorf("Wait without timeout returned false")
	}
	proctest.Ready(fmt.Sprintf("woken %d", w.Load()))
	return nil
})

// TestWakeAcrossProcesses: a waker in one process wakes a sleeper in
// another that maps the same file at another address. This is what the
// private flag would break: the wait must be keyed on the file page.
func TestWakeAcrossProcesses(t *testing.T) {
	file := filepath.Join(t.TempDir(), "word")
	w := sharedWord(t, file)
	c := proctest.Start(t, "sleeper", file)
	c.Expect(t, "asleep")
	futextest.Await(t, c.Cmd.Process.Pid, 0, 1)
	if n := futex.Wake(w, 1); n != 1 {
		t.Fatalf("Wake from the parent woke %d sleepers in the child, want 1", n)
	}
	c.Expect(t, "woken 0")
	c.Wait(t)
}
