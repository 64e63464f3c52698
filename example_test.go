package userbpf_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/maps"
)

// Create a region, put a value with a bpf_spin_lock-compatible lock word in
// it, update it under the lock (as any other attached process could at the
// same time), and wait for an RCU grace period.
func Example() {
	dir, _ := os.MkdirTemp("", "userbpf-example")
	defer os.RemoveAll(dir)

	r, err := userbpf.CreateRegion(filepath.Join(dir, "demo"), userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	s := r.Shared()
	off, err := s.Alloc(16) // struct { struct bpf_spin_lock l; __u32 pad; __u64 count; }
	if err != nil {
		log.Fatal(err)
	}
	l := (*lock.SpinLock)(s.Pointer(off))
	count := (*uint64)(s.Pointer(off + 8))

	l.Lock(s.Holder())
	*count += 42
	l.Unlock()

	r.Synchronize()
	fmt.Println("count:", *count, "grace periods:", r.Stats().Counters["grace_periods"])
	// Output: count: 42 grace periods: 1
}

// A typed view of a hash map: keys and values are Go values with the C
// layout, and nothing is allocated per operation.
func ExampleNewTypedMap() {
	dir, _ := os.MkdirTemp("", "userbpf-example")
	defer os.RemoveAll(dir)
	r, err := userbpf.CreateRegion(filepath.Join(dir, "demo"), userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	m, err := r.CreateMap(maps.Spec{Name: "flows", Type: maps.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 1024})
	if err != nil {
		log.Fatal(err)
	}
	type stats struct{ Packets, Bytes uint64 }
	flows, err := userbpf.NewTypedMap[uint32, stats](m)
	if err != nil {
		log.Fatal(err)
	}
	flows.Update(7, stats{Packets: 1, Bytes: 1500}, maps.UpdateNoExist)
	s, _ := flows.Lookup(7)
	fmt.Println(s.Packets, s.Bytes)
	// Output: 1 1500
}

// Load a clang-compiled object and run one of its programs: any other
// process attached to the region can open and run it by name too.
func ExampleLoadCollection() {
	dir, _ := os.MkdirTemp("", "userbpf-example")
	defer os.RemoveAll(dir)
	r, err := userbpf.CreateRegion(filepath.Join(dir, "demo"), userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	c, err := userbpf.LoadCollection(r, "testdata/spinlock_hash.o")
	if err != nil {
		log.Fatal(err)
	}
	ctx := make([]byte, 64)
	for range 3 {
		c.Programs["lock_inc"].Run(ctx) // lookup, bpf_spin_lock, increment
	}
	total, _ := c.Programs["lock_inc"].Run(ctx)
	fmt.Println("total after 4 runs:", total)
	// Output: total after 4 runs: 4
}
