package lock_test

// Tests with real processes: the test binary re-executes itself (proctest)
// and the processes share a region file. A "killed" process gets SIGKILL
// while it holds a lock, with no chance to clean up.

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/futex/futextest"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/shm"
)

// startStdin starts a child whose stdin the test writes to (to tell it to
// go on) and returns the child and its stdin.
func startStdin(t *testing.T, name string, args ...string) (*proctest.Child, io.WriteCloser) {
	t.Helper()
	cmd := proctest.Command(name, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := proctest.StartCmd(t, name, cmd)
	t.Cleanup(func() { in.Close() })
	return c, in
}

// tagLine parses a child's "WORD TAG" line.
func tagLine(t *testing.T, c *proctest.Child, word string) uint32 {
	t.Helper()
	l := c.Line(t)
	s, ok := strings.CutPrefix(l, word+" ")
	if !ok {
		t.Fatalf("child %s said %q, want %q TAG", c.Name, l, word)
	}
	tag, err := strconv.ParseUint(s, 10, 32)
	if err != nil || tag == 0 || tag&^lock.TagMask != 0 {
		t.Fatalf("child %s printed a bad tag %q: %v", c.Name, s, err)
	}
	return uint32(tag)
}

// startHolder starts a child that takes the lock and keeps it; it returns
// once the child holds it.
func startHolder(t *testing.T, path string, off uint64, kind string) (c *proctest.Child, in io.WriteCloser, tag uint32) {
	t.Helper()
	c, in = startStdin(t, "hold", path, offArg(off), kind)
	return c, in, tagLine(t, c, "holding")
}

// awaitSleepers returns once n threads of this process sleep on w's futex.
func awaitSleepers(t *testing.T, w *atomic.Uint32, n int) {
	t.Helper()
	futextest.Await(t, os.Getpid(), uintptr(unsafe.Pointer(w)), n)
}

// awaitAsleep returns once child c sleeps on a shared futex (the lock word
// is the only one it waits on).
func awaitAsleep(t *testing.T, c *proctest.Child) {
	t.Helper()
	futextest.Await(t, c.Cmd.Process.Pid, 0, 1)
}

// checkRecoveries fails unless the region counted want recoveries of kind
// and none of the other kind, both through Counter and through Stats.
func checkRecoveries(t *testing.T, r *shm.Region, kind string, want uint64) {
	t.Helper()
	st := r.Stats().Counters
	for _, k := range kinds {
		c, name := recoveries(k)
		w := uint64(0)
		if k == kind {
			w = want
		}
		if got := r.Counter(c).Load(); got != w {
			t.Errorf("Counter(%s) = %d, want %d", name, got, w)
		}
		if got := st[name]; got != w {
			t.Errorf("Stats().Counters[%q] = %d, want %d", name, got, w)
		}
	}
}

// TestCountAcrossProcesses: N processes × M increments of a plain counter
// guarded by the lock in the same value; not one update may be lost.
func TestCountAcrossProcesses(t *testing.T) {
	const procs, incs = 4, 200000
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			r, path, off := newRegion(t)
			b := blockAt(r, off)
			cs := make([]*proctest.Child, procs)
			for i := range cs {
				cs[i] = proctest.Start(t, "count", path, offArg(off), kind, strconv.Itoa(incs))
			}
			for _, c := range cs {
				c.Expect(t, "ready")
			}
			openGate(b)
			for _, c := range cs {
				c.Wait(t)
			}
			if b.count != procs*incs {
				t.Errorf("counter = %d after %d processes × %d increments, want %d (%d updates lost)",
					b.count, procs, incs, procs*incs, procs*incs-b.count)
			}
			if w := rawWord(lockerOf(kind, unsafe.Pointer(&b.word))).Load(); w != 0 {
				t.Errorf("lock word = %#x after every process unlocked, want 0", w)
			}
			checkRecoveries(t, r, kind, 0)
		})
	}
}

// TestRecoverKilledHolder: a process is SIGKILLed while it holds the lock.
// The next taker — the parent, or a child that was already asleep on the
// lock when the holder died — gets the lock, is told it recovered it, and
// the region counts exactly one recovery.
func TestRecoverKilledHolder(t *testing.T) {
	for _, kind := range kinds {
		for _, taker := range []string{"parent", "sleeping-child"} {
			t.Run(kind+"/"+taker, func(t *testing.T) {
				r, path, off := newRegion(t)
				b := blockAt(r, off)
				l := lockerOf(kind, unsafe.Pointer(&b.word))
				holder, _, tag := startHolder(t, path, off, kind)
				if got := l.Owner(); got != tag {
					t.Fatalf("Owner() = %d while child %d holds the lock", got, tag)
				}
				if !r.Alive(tag) {
					t.Fatalf("Alive(%d) = false for a live holder", tag)
				}
				switch taker {
				case "parent":
					holder.Kill(t)
					if r.Alive(tag) {
						t.Fatalf("Alive(%d) = true after the holder was killed", tag)
					}
					if !l.Lock(r.Holder()) {
						t.Fatalf("Lock after the holder died: recovered = false")
					}
					if got := l.Owner(); got != r.Tag() {
						t.Fatalf("Owner() = %d after recovery, want the parent's tag %d", got, r.Tag())
					}
					b.count++
					l.Unlock()
				case "sleeping-child":
					w := startWaiter(t, path, off, kind)
					awaitAsleep(t, w)
					holder.Kill(t)
					w.Expect(t, "recovered=true")
					w.Wait(t)
				}
				checkRecoveries(t, r, kind, 1)
				if b.count != 1 {
					t.Errorf("counter = %d, want 1 (one increment by the recoverer, none by the killed holder)", b.count)
				}
				if got := rawWord(l).Load(); got != 0 {
					t.Errorf("lock word = %#x after the recoverer unlocked, want 0", got)
				}
				// The lock is an ordinary lock again.
				if l.Lock(r.Holder()) {
					t.Errorf("Lock of a free lock after a recovery: recovered = true")
				}
				if got := rawWord(l).Load(); got != r.Tag() {
					t.Errorf("lock word = %#x after an uncontended Lock, want the bare tag %#x", got, r.Tag())
				}
				l.Unlock()
				checkRecoveries(t, r, kind, 1)
			})
		}
	}
}

func startWaiter(t *testing.T, path string, off uint64, kind string) *proctest.Child {
	t.Helper()
	c := proctest.Start(t, "waiter", path, offArg(off), kind)
	tagLine(t, c, "waiting")
	return c
}

// TestTwoWaitersOneRecovery: two processes sleep on a lock whose holder is
// killed. Both find the owner dead; exactly one takes the lock over, the
// other gets it in the ordinary way afterwards.
func TestTwoWaitersOneRecovery(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			r, path, off := newRegion(t)
			b := blockAt(r, off)
			holder, _, _ := startHolder(t, path, off, kind)
			w1 := startWaiter(t, path, off, kind)
			w2 := startWaiter(t, path, off, kind)
			awaitAsleep(t, w1)
			awaitAsleep(t, w2)
			holder.Kill(t)
			got := []string{w1.Line(t), w2.Line(t)}
			w1.Wait(t)
			w2.Wait(t)
			if n := strings.Count(strings.Join(got, " "), "recovered=true"); n != 1 {
				t.Errorf("waiters said %q: %d recoveries, want exactly 1", got, n)
			}
			checkRecoveries(t, r, kind, 1)
			if b.count != 2 {
				t.Errorf("counter = %d, want 2", b.count)
			}
		})
	}
}

// watchOwners wraps the region's Owners and reports every liveness probe
// that found the owner alive, so a test knows a waiter has asked (and been
// told no) without guessing how long that takes.
type watchOwners struct {
	lock.Owners
	alive chan uint32
}

func (w *watchOwners) Alive(tag uint32) bool {
	ok := w.Owners.Alive(tag)
	if ok {
		select {
		case w.alive <- tag:
		default:
		}
	}
	return ok
}

// TestNoFalseRecovery: a waiter blocked on a lock whose holder is alive
// (just slow) asks several times whether the holder lives, is told yes each
// time, and never steals the lock. It gets the lock in the ordinary way once
// the holder releases it, after the holder's critical section.
func TestNoFalseRecovery(t *testing.T) {
	const probes = 3
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			r, path, off := newRegion(t)
			b := blockAt(r, off)
			l := lockerOf(kind, unsafe.Pointer(&b.word))
			holder, release, tag := startHolder(t, path, off, kind)
			watch := &watchOwners{Owners: r, alive: make(chan uint32, 16)}
			h := &lock.Holder{Tag: r.Tag(), Owners: watch}
			type result struct {
				recovered bool
				count     uint64
			}
			done := make(chan result, 1)
			go func() {
				rec := l.Lock(h)
				done <- result{rec, b.count}
				l.Unlock()
			}()
			for range probes {
				if got := <-watch.alive; got != tag {
					t.Fatalf("waiter probed tag %d, want the holder's %d", got, tag)
				}
			}
			if got := l.Owner(); got != tag {
				t.Fatalf("Owner() = %d after %d liveness probes, want the live holder %d", got, probes, tag)
			}
			fmt.Fprintln(release, "release")
			holder.Expect(t, "released")
			res := <-done
			if res.recovered {
				t.Errorf("Lock reported a recovery from a live holder")
			}
			if res.count != 1 {
				t.Errorf("waiter saw counter %d inside its critical section, want 1 (the holder's increment)", res.count)
			}
			holder.Wait(t)
			checkRecoveries(t, r, kind, 0)
		})
	}
}

// TestMutexLockTimeoutLiveHolder: LockTimeout against a live holder gives
// up with ok=false and recovered=false, and leaves the lock to its holder.
func TestMutexLockTimeoutLiveHolder(t *testing.T) {
	r, path, off := newRegion(t)
	b := blockAt(r, off)
	m := (*lock.Mutex)(unsafe.Pointer(&b.word))
	holder, release, tag := startHolder(t, path, off, "mutex")
	// 100ms spans several liveness probes (the first after 2ms).
	recovered, ok := m.LockTimeout(r.Holder(), 100*time.Millisecond)
	if ok || recovered {
		t.Fatalf("LockTimeout on a mutex held by a live process = (recovered %v, ok %v), want (false, false)", recovered, ok)
	}
	if got := m.Owner(); got != tag {
		t.Fatalf("Owner() = %d after a timed-out LockTimeout, want the holder %d", got, tag)
	}
	fmt.Fprintln(release, "release")
	holder.Expect(t, "released")
	holder.Wait(t)
	recovered, ok = m.LockTimeout(r.Holder(), 100*time.Millisecond)
	if !ok || recovered {
		t.Fatalf("LockTimeout on a free mutex = (recovered %v, ok %v), want (false, true)", recovered, ok)
	}
	m.Unlock()
	checkRecoveries(t, r, "mutex", 0)
}

// TestRecoverAfterSlotReuse: the holder dies, its process-table slot is
// reaped and claimed again by a new, live process. The tag in the lock word
// still names the slot, but an older generation: it must read as dead, and
// the lock be recovered — by the parent, or by the very process that now
// lives in the slot.
func TestRecoverAfterSlotReuse(t *testing.T) {
	for _, kind := range kinds {
		for _, taker := range []string{"parent", "new-slot-owner"} {
			t.Run(kind+"/"+taker, func(t *testing.T) {
				r, path, off := newRegion(t)
				b := blockAt(r, off)
				l := lockerOf(kind, unsafe.Pointer(&b.word))
				holder, _, old := startHolder(t, path, off, kind)
				holder.Kill(t)
				if n := r.ReapDead(); n != 1 {
					t.Fatalf("ReapDead() = %d after one process died, want 1", n)
				}
				if got := l.Owner(); got != old {
					t.Fatalf("Owner() = %#x, want the dead holder's tag %#x", got, old)
				}
				var c *proctest.Child
				var tag uint32
				if taker == "parent" {
					c, _ = startStdin(t, "idle", path)
					tag = tagLine(t, c, "attached")
				} else {
					c = proctest.Start(t, "waiter", path, offArg(off), kind)
					tag = tagLine(t, c, "waiting")
				}
				if tag&(shm.MaxProcs-1) != old&(shm.MaxProcs-1) || tag == old {
					t.Fatalf("new process got tag %#x, dead holder had %#x: want the same slot, another generation", tag, old)
				}
				if taker == "parent" {
					if r.Alive(old) {
						t.Fatalf("Alive(%#x) = true: a stale tag whose slot was reused reads as alive", old)
					}
					if !r.Alive(tag) {
						t.Fatalf("Alive(%#x) = false for the live process now in the slot", tag)
					}
					if !l.Lock(r.Holder()) {
						t.Fatalf("Lock over a stale tag: recovered = false")
					}
					b.count++
					l.Unlock()
				} else {
					c.Expect(t, "recovered=true")
					c.Wait(t)
				}
				checkRecoveries(t, r, kind, 1)
				if b.count != 1 {
					t.Errorf("counter = %d, want 1", b.count)
				}
			})
		}
	}
}

// TestRecoverAfterPIDReuse: the holder dies and, before anyone reaps its
// table slot, a new unrelated process is born with the very same pid. The
// slot still says "pid P, alive"; only the start time tells that P is
// someone else now. The test forces the pid through
// /proc/sys/kernel/ns_last_pid and is skipped where that is not allowed.
func TestRecoverAfterPIDReuse(t *testing.T) {
	r, path, off := newRegion(t)
	b := blockAt(r, off)
	m := (*lock.Mutex)(unsafe.Pointer(&b.word))
	holder, _, tag := startHolder(t, path, off, "mutex")
	pid := holder.Cmd.Process.Pid
	start := procStart(t, pid)
	holder.Kill(t)
	impostor := reusePID(t, pid, start)
	defer impostor.Kill(t)

	var entry *shm.Process
	for _, p := range r.Processes() {
		if p.Tag == tag {
			entry = &p
		}
	}
	if entry == nil || entry.PID != pid {
		t.Fatalf("process table lost the dead holder's entry (tag %#x, pid %d): %+v", tag, pid, r.Processes())
	}
	if r.Alive(tag) {
		t.Fatalf("Alive(%#x) = true: pid %d is alive again, but it is another process", tag, pid)
	}
	if !m.Lock(r.Holder()) {
		t.Fatalf("Lock after the holder's pid was reused: recovered = false")
	}
	m.Unlock()
	checkRecoveries(t, r, "mutex", 1)
}

// procStart is field 22 of /proc/PID/stat (start time in clock ticks).
func procStart(t *testing.T, pid int) string {
	t.Helper()
	s, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+1:]))
	return f[19]
}

// reusePID starts a process (not attached to any region) with pid,
// whose start time differs from start. The kernel hands out ns_last_pid+1
// next unless another fork gets in first, so it tries again until it wins.
func reusePID(t *testing.T, pid int, start string) *proctest.Child {
	t.Helper()
	const tries = 500
	for range tries {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot choose the next pid: %v", err)
		}
		c, _ := startStdin(t, "sleep")
		if c.Cmd.Process.Pid == pid && procStart(t, pid) != start {
			return c
		}
		// Lost the race for the pid, or born in the dead holder's clock
		// tick (start times have a 10ms granularity): try again.
		c.Kill(t)
	}
	t.Skipf("could not get pid %d again in %d tries", pid, tries)
	return nil
}
