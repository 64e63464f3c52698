package shm

import (
	"testing"
)

// BenchmarkAllocFree64 is one allocation and one free of a 64-byte block,
// uncontended (the target: ≤ 50 ns).
func BenchmarkAllocFree64(b *testing.B) {
	r, _ := newRegion(b, Options{CPUs: 2})
	for b.Loop() {
		off, err := r.Alloc(64)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Free(off); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocFreeParallel is BenchmarkAllocFree64 from GOMAXPROCS
// goroutines at once, all on the same size class's free list.
func BenchmarkAllocFreeParallel(b *testing.B) {
	r, _ := newRegion(b, Options{CPUs: 2})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			off, err := r.Alloc(64)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Free(off); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLeaseCPU is one uncontended lease and release of a virtual CPU.
func BenchmarkLeaseCPU(b *testing.B) {
	r, _ := newRegion(b, Options{CPUs: 2})
	for b.Loop() {
		c, err := r.LeaseCPU()
		if err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
}
