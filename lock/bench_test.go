package lock_test

import (
	"testing"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/lock"
)

// BenchmarkSpinLockUncontended: one Lock + Unlock of a value lock in region
// memory that nobody else touches. Goal: ≤ 20 ns.
func BenchmarkSpinLockUncontended(b *testing.B) {
	r, _, off := newRegion(b)
	l := (*lock.SpinLock)(unsafe.Pointer(&blockAt(r, off).word))
	h := r.Holder()
	for b.Loop() {
		l.Lock(h)
		l.Unlock()
	}
}

// BenchmarkMutexUncontended: one Lock + Unlock of a Mutex in region memory.
func BenchmarkMutexUncontended(b *testing.B) {
	r, _, off := newRegion(b)
	m := (*lock.Mutex)(unsafe.Pointer(&blockAt(r, off).word))
	h := r.Holder()
	for b.Loop() {
		m.Lock(h)
		m.Unlock()
	}
}

// BenchmarkSpinLockTwoProcesses: this process and a child hammer the same
// value lock, each pair incrementing a plain counter in the value. ns/op is
// per pair of this process; pairs/s counts both processes' pairs over the
// timed window (from the counter itself). At the end the counter must hold
// every pair of both: no lost update. Goal: ≥ 5 M pairs/s on 2 cores.
func BenchmarkSpinLockTwoProcesses(b *testing.B) { benchTwoProcesses(b, "spin") }

// BenchmarkMutexTwoProcesses is the same for a Mutex.
func BenchmarkMutexTwoProcesses(b *testing.B) { benchTwoProcesses(b, "mutex") }

func benchTwoProcesses(b *testing.B, kind string) {
	r, path, off := newRegion(b)
	blk := blockAt(r, off)
	l, h := lockerOf(kind, unsafe.Pointer(&blk.word)), r.Holder()
	read := func() uint64 {
		l.Lock(h)
		defer l.Unlock()
		return blk.count
	}
	c := proctest.Start(b, "hammer", path, offArg(off), kind)
	c.Expect(b, "ready")
	for read() == 0 { // until the child is in its loop
	}

	b.ResetTimer()
	start, t0 := read(), time.Now()
	last, handoffs := start, 0
	for i := 0; i < b.N; i++ {
		l.Lock(h)
		if blk.count != last {
			handoffs++ // the child had the lock since our last pair
		}
		blk.count++
		last = blk.count
		l.Unlock()
	}
	end, el := read(), time.Since(t0)
	b.StopTimer()

	blk.stop.Store(1)
	c.Wait(b)
	if want := uint64(b.N) + blk.pairs.Load(); blk.count != want {
		b.Fatalf("counter = %d, want %d (this process %d + child %d): %d updates lost",
			blk.count, want, b.N, blk.pairs.Load(), int64(want-blk.count))
	}
	b.ReportMetric(float64(end-start)/el.Seconds(), "pairs/s")
	b.ReportMetric(float64(end-start-uint64(b.N))/float64(b.N), "child-pairs/op")
	b.ReportMetric(float64(handoffs)/el.Seconds(), "handoffs/s")
}
