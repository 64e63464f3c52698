package release

import (
	"sync"
	"sync/atomic"
	"testing"
)

// A release store publishes what was written before it: a reader that
// sees the flag (with an atomic load) sees the data.
func TestStorePublishes(t *testing.T) {
	for range 1000 {
		var data [4]uint64
		var flag uint64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range data {
				atomic.StoreUint64(&data[i], uint64(i)+1)
			}
			Store64(&flag, 1)
		}()
		for atomic.LoadUint64(&flag) == 0 {
		}
		for i := range data {
			if atomic.LoadUint64(&data[i]) != uint64(i)+1 {
				t.Fatalf("data[%d] not visible after the flag", i)
			}
		}
		wg.Wait()
	}
	var w uint32
	Store32(&w, 0xdeadbeef)
	if w != 0xdeadbeef {
		t.Fatalf("Store32 wrote %#x", w)
	}
}
