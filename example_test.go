package userbpf_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/lock"
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
