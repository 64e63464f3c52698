package release

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The stores write exactly their word: the value, and nothing beside it.
func TestStoreWritesTheWord(t *testing.T) {
	w64 := [3]uint64{1, 2, 3}
	Store64(&w64[1], 0xdeadbeefcafef00d)
	if w64 != [3]uint64{1, 0xdeadbeefcafef00d, 3} {
		t.Fatalf("Store64 left %#x", w64)
	}
	w32 := [3]uint32{1, 2, 3}
	Store32(&w32[1], 0xdeadbeef)
	if w32 != [3]uint32{1, 0xdeadbeef, 3} {
		t.Fatalf("Store32 left %#x", w32)
	}
}

// A reader that sees the flag (with an atomic load) sees the writes made
// before the release store. On amd64 any store would pass; on other
// architectures this is the store-release's job.
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
		deadline := time.Now().Add(10 * time.Second)
		for atomic.LoadUint64(&flag) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the flag never became visible")
			}
		}
		for i := range data {
			if atomic.LoadUint64(&data[i]) != uint64(i)+1 {
				t.Fatalf("data[%d] not visible after the flag", i)
			}
		}
		wg.Wait()
	}
}
