package maps_test

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/userbpf/userbpf/maps"
)

// Programs see one CPU's copy of a per-CPU value and write only it; user
// space sees all of them.
func TestProgPerCPUSemantics(t *testing.T) {
	r, _ := newRegion(t) // 2 virtual CPUs
	for _, typ := range []maps.Type{maps.PerCPUArray, maps.PerCPUHash, maps.LRUPerCPUHash} {
		m := createMap(t, r, maps.Spec{Name: "pc" + typ.String(), Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: 4})
		k := []byte{1, 0, 0, 0}
		if err := m.ProgUpdate(k, []byte{7, 0, 0, 0}, maps.UpdateAny, 1, -1); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if err := m.ProgUpdate(k, []byte{9, 0, 0, 0}, maps.UpdateAny, 0, -1); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		all := make([]byte, m.UserValueSize())
		if err := m.Lookup(k, all, 0); err != nil {
			t.Fatal(err)
		}
		if all[0] != 9 || all[8] != 7 {
			t.Errorf("%s: user space sees %v, want CPU 0 = 9 and CPU 1 = 7", typ, all)
		}
		var got uint32
		r.RCU().ReadPinned(func() {
			if p := m.ProgLookup(k, 1); p != nil {
				got = *(*uint32)(p)
			}
		})
		if got != 7 {
			t.Errorf("%s: a program on CPU 1 sees %d, want 7", typ, got)
		}
	}
}

// A program's lookup marks an LRU element referenced: it survives the
// insertions that evict the elements nobody looked up.
func TestProgLookupKeepsLRUElements(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "lru", Type: maps.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 64})
	k, v := make([]byte, 4), make([]byte, 8)
	for i := uint32(0); i < 64; i++ {
		binary.NativeEndian.PutUint32(k, i)
		if err := m.Update(k, v, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	hot := []byte{5, 0, 0, 0}
	for i := uint32(64); i < 64*4; i++ {
		r.RCU().ReadPinned(func() {
			if p := m.ProgLookup(hot, 0); p == nil {
				t.Fatalf("the key a program keeps using was evicted after %d inserts", i-64)
			} else {
				_ = *(*uint64)(unsafe.Pointer(p))
			}
		})
		binary.NativeEndian.PutUint32(k, i)
		if err := m.Update(k, v, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
}
