package rcu

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkReadLockUnlock is the read-side cost on a Reader the caller owns:
// enter + exit of one section (target ≤ 10 ns).
func BenchmarkReadLockUnlock(b *testing.B) {
	_, d := newRegion(b)
	rd, err := d.NewReader()
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	for b.Loop() {
		rd.Lock()
		rd.Unlock()
	}
}

// BenchmarkReadPooled is the read-side cost through Read(fn), which takes a
// pooled Reader.
func BenchmarkReadPooled(b *testing.B) {
	_, d := newRegion(b)
	n := 0
	fn := func() { n++ }
	for b.Loop() {
		if err := d.Read(fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadPinned is the read-side cost through ReadPinned, on the
// calling goroutine's P's Reader (in race builds it is Read).
func BenchmarkReadPinned(b *testing.B) {
	_, d := newRegion(b)
	n := 0
	fn := func() { n++ }
	for b.Loop() {
		if err := d.ReadPinned(fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSynchronizeNoReaders is a grace period with no reader in flight
// (target ≤ 10 µs median). A few idle Readers hold slots, as in a region
// that is in use. p50-ns is the median of the individually timed calls.
func BenchmarkSynchronizeNoReaders(b *testing.B) {
	_, d := newRegion(b)
	for range 8 {
		rd, err := d.NewReader()
		if err != nil {
			b.Fatal(err)
		}
		defer rd.Close()
	}
	var lat latencies
	for b.Loop() {
		lat.time(d.Synchronize)
	}
	lat.report(b)
}

// BenchmarkMembarrierGlobal is the kernel's grace period, which is what
// user space waits for today after swapping an inner map:
// membarrier(MEMBARRIER_CMD_GLOBAL) is synchronize_rcu (~9 ms here).
func BenchmarkMembarrierGlobal(b *testing.B) {
	const cmdGlobal = 1 // MEMBARRIER_CMD_GLOBAL
	var errno unix.Errno
	membarrier := func() { _, _, errno = unix.Syscall(unix.SYS_MEMBARRIER, cmdGlobal, 0, 0) }
	var lat latencies
	for b.Loop() {
		lat.time(membarrier)
		if errno != 0 {
			b.Skipf("membarrier: %v", errno)
		}
	}
	lat.report(b)
}

// BenchmarkSynchronizeWithReaders is a grace period while other goroutines
// run short read-side sections back to back, each on a Reader of its own.
//
// spinning: GOMAXPROCS-1 readers that never yield, so one P is left for
// Synchronize (more would hold every P until the scheduler's 10 ms
// preemption, which measures Go's scheduler, not RCU).
// yielding: 4 readers that yield after every section, so they share the
// Ps with Synchronize.
func BenchmarkSynchronizeWithReaders(b *testing.B) {
	b.Run("spinning", func(b *testing.B) {
		benchSyncWithReaders(b, max(runtime.GOMAXPROCS(0)-1, 1), false)
	})
	b.Run("yielding", func(b *testing.B) { benchSyncWithReaders(b, 4, true) })
}

func benchSyncWithReaders(b *testing.B, readers int, yield bool) {
	r, d := newRegion(b)
	ctl := newCtl(b, r)
	block := word(r, ctl, ctlPublished)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sections atomic.Uint64
	for range readers {
		rd, err := d.NewReader()
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer rd.Close()
			n := uint64(0)
			for ; !stop.Load(); n++ {
				rd.Lock()
				for range 16 {
					block.Load()
				}
				rd.Unlock()
				if yield {
					runtime.Gosched()
				}
			}
			sections.Add(n)
		})
	}
	var lat latencies
	for b.Loop() {
		lat.time(d.Synchronize)
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	lat.report(b)
	b.ReportMetric(float64(sections.Load())/float64(b.N), "sections/op")
}

// latencies samples the duration of individual calls: one call in
// sampleEvery is timed (all of them while there are few), so that the
// clock reads do not weigh on ns/op of fast operations.
type latencies struct {
	n   int
	lat []time.Duration
}

const sampleEvery = 64

func (l *latencies) time(fn func()) {
	l.n++
	if l.n > 1000 && l.n%sampleEvery != 0 {
		fn()
		return
	}
	t0 := time.Now()
	fn()
	l.lat = append(l.lat, time.Since(t0))
}

// report adds the median and the 99th percentile of the sampled calls.
func (l *latencies) report(b *testing.B) {
	if len(l.lat) == 0 {
		return
	}
	slices.Sort(l.lat)
	b.ReportMetric(float64(l.lat[len(l.lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.lat[len(l.lat)*99/100].Nanoseconds()), "p99-ns")
}
