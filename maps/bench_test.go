package maps_test

// Benchmarks of the hot commands from an attached process (the kernel's
// bpf(2) lookup takes ~1.2 µs on these machines), and of two processes
// incrementing one locked value.

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

const benchEntries = 64 << 10

// benchMap creates a map of 4-byte keys and 8-byte values holding
// benchEntries elements.
func benchMap(b *testing.B, typ maps.Type) *maps.Map {
	b.Helper()
	r, _ := newRegion(b)
	m := createMap(b, r, maps.Spec{Name: "bench", Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: benchEntries})
	v := make([]byte, 8)
	for k := range uint32(benchEntries) {
		binary.NativeEndian.PutUint64(v, uint64(k))
		noErr(b, "fill", m.Update(key32(k), v, maps.UpdateAny))
	}
	return m
}

func benchLookup(b *testing.B, typ maps.Type) {
	m := benchMap(b, typ)
	key, val := make([]byte, 4), make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.NativeEndian.PutUint32(key, uint32(i*7919)%benchEntries)
		if err := m.Lookup(key, val, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashLookup(b *testing.B)  { benchLookup(b, maps.Hash) }
func BenchmarkArrayLookup(b *testing.B) { benchLookup(b, maps.Array) }

func BenchmarkHashLookupMiss(b *testing.B) {
	m := benchMap(b, maps.Hash)
	key, val := key32(benchEntries+1), make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Lookup(key, val, 0); err == nil {
			b.Fatal("hit")
		}
	}
}

// BenchmarkHashUpdate replaces existing keys of a full map: each update
// takes a spare element and retires the old one (a grace period every few
// spares).
func BenchmarkHashUpdate(b *testing.B) {
	m := benchMap(b, maps.Hash)
	key, val := make([]byte, 4), make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.NativeEndian.PutUint32(key, uint32(i*7919)%benchEntries)
		binary.NativeEndian.PutUint64(val, uint64(i))
		if err := m.Update(key, val, maps.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkArrayUpdate(b *testing.B) {
	m := benchMap(b, maps.Array)
	key, val := make([]byte, 4), make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.NativeEndian.PutUint32(key, uint32(i*7919)%benchEntries)
		if err := m.Update(key, val, maps.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTypedLookup(b *testing.B) {
	for _, typ := range []maps.Type{maps.Hash, maps.Array} {
		b.Run(typ.String(), func(b *testing.B) {
			tm, err := userbpf.NewTypedMap[uint32, uint64](benchMap(b, typ))
			noErr(b, "typed", err)
			b.ReportAllocs()
			b.ResetTimer()
			var sum uint64
			for i := 0; b.Loop(); i++ {
				v, err := tm.Lookup(uint32(i*7919) % benchEntries)
				if err != nil {
					b.Fatal(err)
				}
				sum += v
			}
			_ = sum
		})
	}
}

func BenchmarkTypedUpdate(b *testing.B) {
	tm, err := userbpf.NewTypedMap[uint32, uint64](benchMap(b, maps.Hash))
	noErr(b, "typed", err)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := tm.Update(uint32(i*7919)%benchEntries, uint64(i), maps.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
}

// hammer: path — increment the counter at offset 8 of key 0's value in map
// "cnt" under its lock until word 0 of map "ctl" is non-zero, then print
// how many increments it made.
var _ = proctest.Register("hammer", func(args []string) error {
	r, m, err := openChild(args[0], "cnt", 0)
	if err != nil {
		return err
	}
	defer r.Close()
	ctl, err := r.OpenMap("ctl", 0)
	if err != nil {
		return err
	}
	p, err := ctl.ValuePointer(0)
	if err != nil {
		return err
	}
	stop := (*atomic.Uint64)(p)
	key := key32(0)
	inc := func(v []byte) error {
		binary.NativeEndian.PutUint64(v[8:], binary.NativeEndian.Uint64(v[8:])+1)
		return nil
	}
	proctest.Ready("ready")
	n := 0
	for ; stop.Load() == 0; n++ {
		if err := m.WithLock(key, inc); err != nil {
			return err
		}
	}
	proctest.Ready(strconv.Itoa(n))
	return nil
})

// BenchmarkLockedIncrementTwoProcs: this process and a child increment one
// locked counter in a hash value as fast as they can; b.N is this
// process's share. It fails on a lost update and reports the combined rate.
func BenchmarkLockedIncrementTwoProcs(b *testing.B) {
	r, path := newRegion(b)
	m := createMap(b, r, maps.Spec{Name: "cnt", Type: maps.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 1,
		HasLock: true, LockOffset: 0})
	ctl := createMap(b, r, maps.Spec{Name: "ctl", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	noErr(b, "update", m.Update(key32(0), make([]byte, 16), maps.UpdateAny))
	p, err := ctl.ValuePointer(0)
	noErr(b, "ctl", err)
	c := startChild(b, "hammer", path)
	c.Expect(b, "ready")
	key := key32(0)
	inc := func(v []byte) error {
		binary.NativeEndian.PutUint64(v[8:], binary.NativeEndian.Uint64(v[8:])+1)
		return nil
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := m.WithLock(key, inc); err != nil {
			b.Fatal(err)
		}
	}
	(*atomic.Uint64)(p).Store(1)
	elapsed := time.Since(start)
	b.StopTimer()
	theirs, err := strconv.Atoi(c.Line(b))
	noErr(b, "child count", err)
	c.Wait(b)
	v := make([]byte, 16)
	noErr(b, "lookup", m.Lookup(key, v, maps.FlagLock))
	total := uint64(b.N + theirs)
	if got := binary.NativeEndian.Uint64(v[8:]); got != total {
		b.Fatalf("counter = %d after %d + %d locked increments: %d lost", got, b.N, theirs, int64(total)-int64(got))
	}
	b.ReportMetric(float64(total)/elapsed.Seconds()/1e6, "Mops/s")
	b.ReportMetric(float64(theirs)/float64(total), "child-share")
}
