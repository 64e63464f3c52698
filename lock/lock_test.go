package lock_test

// In-process tests of the lock word: bits, fast paths, wake-ups and
// recovery, with a fake Owners table.

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/futex"
	"github.com/userbpf/userbpf/lock"
)

// fakeOwners is a process table in a map: every tag is alive unless marked
// dead; recoveries are recorded.
type fakeOwners struct {
	mu         sync.Mutex
	dead       map[uint32]bool
	recoveries []lock.Kind
}

func (f *fakeOwners) Alive(tag uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.dead[tag]
}

func (f *fakeOwners) NoteRecovery(k lock.Kind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recoveries = append(f.recoveries, k)
}

func (f *fakeOwners) recovered() []lock.Kind {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lock.Kind(nil), f.recoveries...)
}

func kindOf(kind string) lock.Kind {
	if kind == "spin" {
		return lock.KindSpin
	}
	return lock.KindMutex
}

// newWord returns a fresh lock word and its two views.
func newWord(kind string) (locker, *atomic.Uint32) {
	w := new(atomic.Uint32)
	return lockerOf(kind, unsafe.Pointer(w)), w
}

// watchdog fails the test if done is not closed within a minute: the
// symptom of a lost wake-up in a test that stretched the check intervals.
func watchdog(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s: still blocked after a minute (lost wake-up)", what)
	}
}

// stretchChecks makes a sleeping waiter depend on being woken: its first
// liveness re-check would come after an hour.
func stretchChecks(t *testing.T) {
	restore := lock.SetCheckIntervals(time.Hour, time.Hour)
	t.Cleanup(restore)
}

func TestLayout(t *testing.T) {
	// struct bpf_spin_lock { __u32 val; }: 4 bytes, 4-aligned, zero = unlocked.
	if s, a := unsafe.Sizeof(lock.SpinLock{}), unsafe.Alignof(lock.SpinLock{}); s != 4 || a != 4 {
		t.Errorf("SpinLock: size %d align %d, want 4 and 4 (struct bpf_spin_lock)", s, a)
	}
	if s, a := unsafe.Sizeof(lock.Mutex{}), unsafe.Alignof(lock.Mutex{}); s != 4 || a != 4 {
		t.Errorf("Mutex: size %d align %d, want 4 and 4", s, a)
	}
	var l lock.SpinLock
	var m lock.Mutex
	if l.Owner() != 0 || m.Owner() != 0 {
		t.Errorf("zero values: Owner() = %d, %d, want 0 (unlocked)", l.Owner(), m.Owner())
	}
	if lock.WaitersBit != 1<<31 || lock.TagMask != 1<<31-1 {
		t.Errorf("WaitersBit %#x TagMask %#x, want bit 31 and the 31 bits below", lock.WaitersBit, uint32(lock.TagMask))
	}
}

func TestTryLock(t *testing.T) {
	var l lock.SpinLock
	w := rawWord(&l)
	a, b := &lock.Holder{Tag: 1}, &lock.Holder{Tag: 2}
	if !l.TryLock(a) {
		t.Fatal("TryLock of a free lock failed")
	}
	if got := w.Load(); got != 1 {
		t.Fatalf("word = %#x after TryLock by tag 1, want 1", got)
	}
	if l.TryLock(b) || l.TryLock(a) {
		t.Fatal("TryLock of a held lock succeeded")
	}
	if got := l.Owner(); got != 1 {
		t.Fatalf("Owner() = %d after failed TryLocks, want 1", got)
	}
	// A held word with waiters is still held.
	w.Store(1 | lock.WaitersBit)
	if l.TryLock(b) {
		t.Fatal("TryLock of a held lock with waiters succeeded")
	}
	l.Unlock()
	if got := w.Load(); got != 0 {
		t.Fatalf("word = %#x after Unlock, want 0", got)
	}
	if !l.TryLock(b) || l.Owner() != 2 {
		t.Fatalf("TryLock after Unlock: Owner() = %d, want 2", l.Owner())
	}
}

func TestOwnerIgnoresWaitersBit(t *testing.T) {
	for _, kind := range kinds {
		l, w := newWord(kind)
		w.Store(12345 | lock.WaitersBit)
		if got := l.Owner(); got != 12345 {
			t.Errorf("%s: Owner() = %#x for word %#x, want 12345", kind, got, w.Load())
		}
	}
}

// TestBadTagPanics: a zero tag would make Lock a no-op (CAS 0 → 0) that
// excludes no one; a tag with bit 31 would read as the waiters bit. Both are
// refused loudly.
func TestBadTagPanics(t *testing.T) {
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		f()
	}
	for _, kind := range kinds {
		l, w := newWord(kind)
		mustPanic(kind+": Lock of a free lock with tag 0", func() { l.Lock(&lock.Holder{}) })
		w.Store(5)
		mustPanic(kind+": Lock of a held lock with tag 0", func() { l.Lock(&lock.Holder{}) })
		mustPanic(kind+": Lock of a held lock with bit 31 set", func() { l.Lock(&lock.Holder{Tag: lock.WaitersBit | 1}) })
		if got := w.Load(); got != 5 {
			t.Errorf("%s: word = %#x after refused Locks, want the holder 5", kind, got)
		}
	}
	var l lock.SpinLock
	mustPanic("TryLock with tag 0", func() { l.TryLock(&lock.Holder{}) })
	mustPanic("TryLock with bit 31 set", func() { l.TryLock(&lock.Holder{Tag: lock.WaitersBit}) })
	var m lock.Mutex
	mustPanic("LockTimeout with tag 0", func() { m.LockTimeout(&lock.Holder{}, time.Second) })
	if l.Owner() != 0 || m.Owner() != 0 {
		t.Errorf("refused locks left owners %d and %d, want 0", l.Owner(), m.Owner())
	}
}

// TestFastPath: an uncontended Lock stores the bare tag (no waiters bit, so
// Unlock makes no system call), and Unlock clears the word.
func TestFastPath(t *testing.T) {
	for _, kind := range kinds {
		l, w := newWord(kind)
		h := &lock.Holder{Tag: 77, Owners: &fakeOwners{}}
		if l.Lock(h) {
			t.Errorf("%s: Lock of a free lock reported a recovery", kind)
		}
		if got := w.Load(); got != 77 {
			t.Errorf("%s: word = %#x after an uncontended Lock, want 77", kind, got)
		}
		l.Unlock()
		if got := w.Load(); got != 0 {
			t.Errorf("%s: word = %#x after Unlock, want 0", kind, got)
		}
	}
}

// TestUnlockWakesSleeper: a waiter asleep on the futex is woken by Unlock
// (its own re-check would come only after an hour), gets the lock after the
// holder's critical section, and holds it with the waiters bit set.
func TestUnlockWakesSleeper(t *testing.T) {
	stretchChecks(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l, w := newWord(kind)
			owners := &fakeOwners{}
			a, b := &lock.Holder{Tag: 1, Owners: owners}, &lock.Holder{Tag: 2, Owners: owners}
			l.Lock(a)
			step := 0 // written under the lock
			done := make(chan struct{})
			var sawStep int
			var sawWord uint32
			go func() {
				defer close(done)
				l.Lock(b)
				sawStep, sawWord = step, w.Load()
				l.Unlock()
			}()
			awaitSleepers(t, w, 1)
			if got := w.Load(); got != 1|lock.WaitersBit {
				t.Fatalf("word = %#x with a sleeping waiter, want holder 1 | WaitersBit", got)
			}
			step = 1
			l.Unlock()
			watchdog(t, done, "waiter after Unlock")
			if sawStep != 1 {
				t.Errorf("waiter entered before the holder's critical section ended (saw step %d)", sawStep)
			}
			// A woken waiter cannot know whether others sleep: it keeps the bit.
			if sawWord != 2|lock.WaitersBit {
				t.Errorf("word = %#x held by the woken waiter, want 2 | WaitersBit", sawWord)
			}
			if got := w.Load(); got != 0 {
				t.Errorf("word = %#x after the waiter's Unlock, want 0", got)
			}
			if rec := owners.recovered(); len(rec) != 0 {
				t.Errorf("recoveries %v with every owner alive", rec)
			}
		})
	}
}

// TestUnlockWakesChain: two waiters sleep behind a holder. The holder's
// Unlock wakes one; that one must keep the waiters bit so its own Unlock
// wakes the other (else the second would sleep for an hour).
func TestUnlockWakesChain(t *testing.T) {
	stretchChecks(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l, w := newWord(kind)
			owners := &fakeOwners{}
			l.Lock(&lock.Holder{Tag: 1, Owners: owners})
			var order []uint32 // appended under the lock
			var wg sync.WaitGroup
			for _, tag := range []uint32{2, 3} {
				wg.Go(func() {
					l.Lock(&lock.Holder{Tag: tag, Owners: owners})
					order = append(order, tag)
					l.Unlock()
				})
			}
			awaitSleepers(t, w, 2)
			order = append(order, 1)
			l.Unlock()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			watchdog(t, done, "second waiter")
			if len(order) != 3 || order[0] != 1 {
				t.Errorf("critical sections ran in order %v, want the holder's first, then both waiters", order)
			}
			if got := w.Load(); got != 0 {
				t.Errorf("word = %#x after everyone unlocked, want 0", got)
			}
		})
	}
}

// TestRecoverDeadOwner: a word left locked by a dead tag is taken over,
// the recovery is reported once, with the lock's kind, and the new holder
// keeps the waiters bit (others may sleep on the dead owner too).
func TestRecoverDeadOwner(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l, w := newWord(kind)
			owners := &fakeOwners{dead: map[uint32]bool{7: true}}
			w.Store(7)
			if !l.Lock(&lock.Holder{Tag: 1, Owners: owners}) {
				t.Fatal("Lock over a dead owner: recovered = false")
			}
			if got := w.Load(); got != 1|lock.WaitersBit {
				t.Errorf("word = %#x after recovery, want 1 | WaitersBit", got)
			}
			if rec := owners.recovered(); len(rec) != 1 || rec[0] != kindOf(kind) {
				t.Errorf("NoteRecovery calls %v, want exactly [%v]", rec, kindOf(kind))
			}
			l.Unlock()
			if l.Lock(&lock.Holder{Tag: 1, Owners: owners}) {
				t.Error("Lock of a free lock after a recovery: recovered = true")
			}
		})
	}
}

// TestRecoverUnderWakeStorm: a waiter whose futex wait keeps returning
// with the word unchanged (spurious wake-ups here; in real life signals,
// which interrupt a timed FUTEX_WAIT with EINTR) must still ask about the
// owner when the probe is due, and recover the lock of a dead one.
func TestRecoverUnderWakeStorm(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l, w := newWord(kind)
			owners := &fakeOwners{dead: map[uint32]bool{7: true}}
			w.Store(7)
			done := make(chan bool)
			go func() { done <- l.Lock(&lock.Holder{Tag: 1, Owners: owners}) }()
			give := time.After(time.Minute)
			for {
				select {
				case rec := <-done:
					if !rec {
						t.Fatal("Lock over a dead owner: recovered = false")
					}
					return
				case <-give:
					t.Fatal("waiter never recovered the lock while woken over and over")
				default:
					futex.Wake(w, 1)
				}
			}
		})
	}
}

// TestMutexTimeoutRecovers: LockTimeout also takes a dead owner's mutex
// over, and says so.
func TestMutexTimeoutRecovers(t *testing.T) {
	var m lock.Mutex
	rawWord(&m).Store(7)
	owners := &fakeOwners{dead: map[uint32]bool{7: true}}
	recovered, ok := m.LockTimeout(&lock.Holder{Tag: 1, Owners: owners}, time.Minute)
	if !ok || !recovered {
		t.Fatalf("LockTimeout over a dead owner = (recovered %v, ok %v), want (true, true)", recovered, ok)
	}
	if m.Owner() != 1 {
		t.Fatalf("Owner() = %d, want 1", m.Owner())
	}
}

// TestNoOwnersNoRecovery: a holder without an Owners table never takes a
// lock over, however long it waits.
func TestNoOwnersNoRecovery(t *testing.T) {
	var m lock.Mutex
	w := rawWord(&m)
	w.Store(7)
	recovered, ok := m.LockTimeout(&lock.Holder{Tag: 1}, 20*time.Millisecond)
	if ok || recovered {
		t.Fatalf("LockTimeout without Owners = (recovered %v, ok %v), want (false, false)", recovered, ok)
	}
	if got := w.Load(); got != 7|lock.WaitersBit {
		t.Fatalf("word = %#x, want the holder 7 | WaitersBit (a timed-out waiter leaves the bit)", got)
	}
}

func TestMutexLockTimeout(t *testing.T) {
	var m lock.Mutex
	owners := &fakeOwners{}
	a, b := &lock.Holder{Tag: 1, Owners: owners}, &lock.Holder{Tag: 2, Owners: owners}
	if recovered, ok := m.LockTimeout(a, 0); !ok || recovered {
		t.Fatalf("LockTimeout(0) of a free mutex = (recovered %v, ok %v), want (false, true)", recovered, ok)
	}
	for _, d := range []time.Duration{-time.Second, 0, time.Millisecond} {
		if recovered, ok := m.LockTimeout(b, d); ok || recovered {
			t.Fatalf("LockTimeout(%v) of a held mutex = (recovered %v, ok %v), want (false, false)", d, recovered, ok)
		}
		if m.Owner() != 1 {
			t.Fatalf("Owner() = %d after a failed LockTimeout, want 1", m.Owner())
		}
	}
	m.Unlock()
	if recovered, ok := m.LockTimeout(b, time.Minute); !ok || recovered {
		t.Fatalf("LockTimeout of a released mutex = (recovered %v, ok %v), want (false, true)", recovered, ok)
	}
}

// TestGoroutinesCount: goroutines of one process contend on one word. The
// race detector checks that Lock/Unlock order the plain counter accesses
// (acquire/release), which processes cannot show it.
func TestGoroutinesCount(t *testing.T) {
	const workers, incs = 4, 20000
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l, w := newWord(kind)
			owners := &fakeOwners{}
			count := 0
			var wg sync.WaitGroup
			for i := range workers {
				h := &lock.Holder{Tag: uint32(i + 1), Owners: owners}
				wg.Go(func() {
					for range incs {
						l.Lock(h)
						count++
						l.Unlock()
					}
				})
			}
			wg.Wait()
			if count != workers*incs {
				t.Errorf("count = %d, want %d", count, workers*incs)
			}
			if got := w.Load(); got != 0 {
				t.Errorf("word = %#x at the end, want 0", got)
			}
			if rec := owners.recovered(); len(rec) != 0 {
				t.Errorf("recoveries %v with every owner alive", rec)
			}
		})
	}
}
