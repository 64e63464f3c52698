package ringbuf

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/userbpf/userbpf/maps"
)

// BenchmarkThroughput64 moves 64-byte records from a producer goroutine to
// the benchmark's reader through a 1 MiB ring (the cross-process figure is
// `userbpf bench ringbuf`).
func BenchmarkThroughput64(b *testing.B) {
	r, _ := newRegion(b)
	m, g := newRing(b, r, "rb", maps.RingBuf, 1<<20)
	rd := newReader(b, m)
	rec := Record{RawSample: make([]byte, 0, 64)}
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		data := make([]byte, 64)
		for range b.N {
			for {
				err := g.Output(data, 0)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrFull) {
					panic(err)
				}
				runtime.Gosched()
			}
		}
	}()
	for range b.N {
		if err := rd.ReadInto(context.Background(), &rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutputThenRead64 is one goroutine writing a batch of 64-byte
// records and reading it back: the cost of each side alone.
func BenchmarkOutputThenRead64(b *testing.B) {
	r, _ := newRegion(b)
	m, g := newRing(b, r, "rb", maps.RingBuf, 1<<20)
	rd := newReader(b, m)
	rec := Record{RawSample: make([]byte, 0, 64)}
	data := make([]byte, 64)
	const batch = 1 << 12
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		for range batch {
			if err := g.Output(data, 0); err != nil {
				b.Fatal(err)
			}
		}
		for range batch {
			if err := rd.ReadInto(context.Background(), &rec); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkOutput64(b *testing.B) {
	r, _ := newRegion(b)
	m, g := newRing(b, r, "rb", maps.RingBuf, 1<<20)
	rd := newReader(b, m)
	rec := Record{RawSample: make([]byte, 0, 64)}
	data := make([]byte, 64)
	const batch = 1 << 12
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		for range batch {
			if err := g.Output(data, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for range batch {
			if err := rd.ReadInto(context.Background(), &rec); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}
