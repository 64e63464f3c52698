package maps

// The hash's storage: hot and cold parts, element numbers, in-place
// updates of one-word values.

import (
	"encoding/binary"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
)

func newInternalMap(t *testing.T, s Spec) *Map { return newInternalMapB(t, s) }

func newInternalMapB(t testing.TB, s Spec) *Map {
	t.Helper()
	r, err := shm.Create(filepath.Join(t.TempDir(), "region"), shm.Options{CPUs: 2, SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	d := rcu.New(r)
	t.Cleanup(func() { d.Close(); r.Close() })
	m, err := Create(r, d, s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHashGeometry checks the sizes the layout comment promises.
func TestHashGeometry(t *testing.T) {
	for _, tc := range []struct {
		spec               Spec
		elem, bucket, cold uint64
		valueOff           uint64
	}{
		{Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024}, 16, 8, 8, 8},
		{Spec{Type: Hash, KeySize: 8, ValueSize: 8, MaxEntries: 1024}, 24, 8, 8, 16},
		{Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024, Flags: FlagNoPrealloc}, 24, 16, 16, 16},
		{Spec{Type: PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 1024}, 8 + 2*8, 8, 8, 8},
		{Spec{Type: LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 1024}, 16, 8, 16, 8},
	} {
		tc.spec.Name = "h"
		m := newInternalMap(t, tc.spec)
		c := m.hc
		if uint64(c.elemSize) != tc.elem || uint64(c.bucketSize) != tc.bucket || uint64(c.coldSize) != tc.cold ||
			uint64(c.valueOff) != tc.valueOff {
			t.Errorf("%+v: element %d+%d bytes, bucket %d, value at %d; want %d+%d, %d, %d",
				tc.spec, c.elemSize, c.coldSize, c.bucketSize, c.valueOff, tc.elem, tc.cold, tc.bucket, tc.valueOff)
		}
		want := uint64(1024) * tc.bucket
		if c.narrow {
			want += uint64(m.d.PoolLen) * (tc.elem + tc.cold)
		}
		if m.Storage() != want {
			t.Errorf("%+v: Storage() = %d, want %d", tc.spec, m.Storage(), want)
		}
	}
}

// TestRetiredBefore checks the 32-bit epoch comparison across the wrap.
func TestRetiredBefore(t *testing.T) {
	for _, tc := range []struct {
		r         uint32
		done, now uint64
		before    bool
	}{
		{5, 10, 12, true},
		{10, 10, 12, false},
		{12, 10, 12, false},
		{1<<32 - 1, 1 << 32, 1<<32 + 3, true}, // retired just before the wrap
		{2, 1 << 32, 1<<32 + 3, false},        // after it, inside the window
		{4, 1 << 32, 1<<32 + 3, true},         // "after now": an element from 2^32 epochs ago
	} {
		if got := retiredBefore(tc.r, tc.done, tc.now); got != tc.before {
			t.Errorf("retiredBefore(%d, %d, %d) = %v", tc.r, tc.done, tc.now, got)
		}
	}
}

// TestHashElementIndex checks the shift-and-multiply division against a
// real one for element sizes with odd factors and without.
func TestHashElementIndex(t *testing.T) {
	for _, vs := range []uint32{8, 16, 24, 40, 104, 1000} {
		m := newInternalMap(t, Spec{Name: "h", Type: Hash, KeySize: 4, ValueSize: vs, MaxEntries: 64})
		c := &m.hc
		for i := uint64(0); i < uint64(m.d.PoolLen); i++ {
			off := c.poolOff + i*uint64(c.elemSize)
			if got := c.index(off); got != i {
				t.Fatalf("value %d: index(element %d) = %d", vs, i, got)
			}
			if !m.ops.(*hashOps).inPool(m, off) || m.ops.(*hashOps).inPool(m, off+4) {
				t.Fatalf("value %d: inPool wrong around element %d", vs, i)
			}
		}
	}
}

// TestHashUpdateOrder updates every key of a full map (16 keys in 16
// buckets: some share one) in a scrambled order, and checks after each update that
// iteration follows the kernel's rule (a replaced key moves to its
// bucket's head), that an update of a bucket's newest key kept its
// element (in place) and that of any other key took a new one.
func TestHashUpdateOrder(t *testing.T) {
	m := newInternalMap(t, Spec{Name: "h", Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16, Flags: FlagZeroSeed})
	h := m.ops.(*hashOps)
	mask := m.d.NBuckets - 1
	buckets := make([][]uint32, m.d.NBuckets) // the model: each bucket newest first
	val := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	for k := range uint32(16) {
		if err := m.Update(key32(k), val(uint64(k)), UpdateAny); err != nil {
			t.Fatal(err)
		}
		b := keyHash(key32(k), 0) & mask
		buckets[b] = append([]uint32{k}, buckets[b]...)
	}
	inPlace, replaced := 0, 0
	for i := range uint32(48) {
		k := i * 7 % 16
		b := keyHash(key32(k), 0) & mask
		before, _ := h.find(m, h.bucket(m, keyHash(key32(k), 0)), key32(k))
		atHead := buckets[b][0] == k
		if err := m.Update(key32(k), val(uint64(1000+i)), UpdateExist); err != nil {
			t.Fatal(err)
		}
		after, _ := h.find(m, h.bucket(m, keyHash(key32(k), 0)), key32(k))
		if atHead != (before == after) {
			t.Fatalf("update %d of key %d (newest in its bucket: %v): element %#x -> %#x", i, k, atHead, before, after)
		}
		if atHead {
			inPlace++
		} else {
			replaced++
		}
		j := slices.Index(buckets[b], k)
		buckets[b] = append([]uint32{k}, slices.Delete(buckets[b], j, j+1)...)
		var want []uint32
		for _, bk := range buckets {
			want = append(want, bk...)
		}
		var got []uint32
		var cur []byte
		next := make([]byte, 4)
		for m.NextKey(cur, next) == nil {
			got = append(got, binary.NativeEndian.Uint32(next))
			cur = append(cur[:0], next...)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after update %d of key %d: order %v, want %v", i, k, got, want)
		}
		v := make([]byte, 8)
		if err := m.Lookup(key32(k), v, 0); err != nil || binary.NativeEndian.Uint64(v) != uint64(1000+i) {
			t.Fatalf("key %d: %v %d", k, err, binary.NativeEndian.Uint64(v))
		}
		if m.Count() != 16 {
			t.Fatalf("count %d after updating existing keys", m.Count())
		}
	}
	if inPlace == 0 || replaced == 0 {
		t.Fatalf("%d updates in place, %d replacements: both paths must run", inPlace, replaced)
	}
}

// TestHashUpdateInPlaceNotTorn has readers look up a key whose 8-byte
// value a writer keeps replacing in place: every value read has equal
// halves, as every value written.
func TestHashUpdateInPlaceNotTorn(t *testing.T) {
	m := newInternalMap(t, Spec{Name: "h", Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	k := key32(1)
	word := func(i uint32) []byte { return binary.NativeEndian.AppendUint64(nil, uint64(i)<<32|uint64(i)) }
	if err := m.Update(k, word(0), UpdateAny); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var torn atomic.Uint64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := make([]byte, 8)
			for !stop.Load() {
				if err := m.Lookup(k, v, 0); err != nil {
					t.Error(err)
					return
				}
				if x := binary.NativeEndian.Uint64(v); x>>32 != x&0xffffffff {
					torn.Store(x)
				}
			}
		}()
	}
	for i := range uint32(200000) {
		if err := m.Update(k, word(i), UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if x := torn.Load(); x != 0 {
		t.Fatalf("read a torn value %#x", x)
	}
}

func key32(k uint32) []byte { return binary.NativeEndian.AppendUint32(nil, k) }

// TestHashUpdateInPlaceAnywhere: with a random seed, an update of any
// existing key of a one-word HASH keeps its element and its place (the
// iteration order does not change), and a value with a lock, or a
// ZERO_SEED map's key behind another, is replaced as before.
func TestHashUpdateInPlaceAnywhere(t *testing.T) {
	for _, flags := range []uint32{0, FlagNoPrealloc} {
		testInPlaceAnywhere(t, newInternalMap(t, Spec{Name: "h", Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 64, Flags: flags}))
	}
	locked := newInternalMap(t, Spec{Name: "l", Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4, HasLock: true, LockOffset: 0})
	if locked.hc.wordValue || locked.hc.anywhere {
		t.Fatal("a value with a bpf_spin_lock must not be updated in place")
	}
	zero := newInternalMap(t, Spec{Name: "z", Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: FlagZeroSeed})
	lru := newInternalMap(t, Spec{Name: "r", Type: LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if !zero.hc.wordValue || zero.hc.anywhere || lru.hc.wordValue {
		t.Fatal("ZERO_SEED: head only; LRU: never")
	}
}

func testInPlaceAnywhere(t *testing.T, m *Map) {
	h := m.ops.(*hashOps)
	for k := range uint32(64) {
		if err := m.Update(key32(k), make([]byte, 8), UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	order := func() []uint32 {
		var got []uint32
		var cur []byte
		next := make([]byte, 4)
		for m.NextKey(cur, next) == nil {
			got = append(got, binary.NativeEndian.Uint32(next))
			cur = append(cur[:0], next...)
		}
		return got
	}
	before := order()
	for i := range uint32(200) {
		k := key32(i * 13 % 64)
		was, _ := h.find(m, h.bucket(m, keyHash(k, m.d.Seed)), k)
		if err := m.Update(k, binary.NativeEndian.AppendUint64(nil, uint64(i)), UpdateExist); err != nil {
			t.Fatal(err)
		}
		if is, _ := h.find(m, h.bucket(m, keyHash(k, m.d.Seed)), k); is != was {
			t.Fatalf("update %d moved key %d from element %#x to %#x", i, i*13%64, was, is)
		}
	}
	if after := order(); !slices.Equal(before, after) {
		t.Fatalf("order changed by in-place updates:\n%v\n%v", before, after)
	}
}

// TestKeyHashShortcuts: the 4- and 8-byte cases are jhash2's.
func TestKeyHashShortcuts(t *testing.T) {
	x := uint32(12345)
	for i := range 10000 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		k := binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, x), x*2654435761)
		seed := x * uint32(i)
		for _, key := range [][]byte{k[:4], k} {
			if got, want := keyHash(key, seed), jhash2(key, seed); got != want {
				t.Fatalf("keyHash(% x, %#x) = %#x, jhash2 %#x", key, seed, got, want)
			}
		}
	}
}

// TestHashScribbledLinks: links another process scribbled on (numbers
// past the pool, a cycle) end a walk: no command panics, loops forever or
// touches memory outside the map.
func TestHashScribbledLinks(t *testing.T) {
	m := newInternalMap(t, Spec{Name: "h", Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
	h := m.ops.(*hashOps)
	v := make([]byte, 8)
	for k := range uint32(16) {
		if err := m.Update(key32(k), v, UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	for i := range m.d.NBuckets {
		p := (*uint32)(h.headLink(m, h.bucket(m, i)).p)
		switch i % 3 {
		case 0:
			*p = ^uint32(0) // past the pool
		case 1:
			if *p != 0 {
				*(*uint32)(m.region.Pointer(h.load(m, h.headLink(m, h.bucket(m, i))))) = *p // a cycle of one
			}
		}
	}
	next, keys, vals, out := make([]byte, 4), make([]byte, 4*32), make([]byte, 8*32), make([]byte, 4)
	for k := range uint32(32) {
		m.Lookup(key32(k), v, 0)
		m.Update(key32(k), v, UpdateAny)
		m.Delete(key32(k))
		m.NextKey(key32(k), next)
	}
	m.LookupBatch(nil, out, keys, vals, 0, 0)
	// Scribble again over what the commands left, then iterate: every
	// step must go forward, so the walk ends.
	for i := range m.d.NBuckets {
		if off := h.load(m, h.headLink(m, h.bucket(m, i))); off != 0 && i%2 == 0 {
			*(*uint32)(m.region.Pointer(off)) = *(*uint32)(h.headLink(m, h.bucket(m, i)).p) // a cycle of one
		}
		if i%2 == 1 {
			*(*uint32)(h.headLink(m, h.bucket(m, i)).p) = *(*uint32)(h.headLink(m, h.bucket(m, i-1)).p) // another bucket's chain
		}
	}
	var cur []byte
	steps := 0
	for ; m.NextKey(cur, next) == nil; steps++ {
		if steps > 100 {
			t.Fatal("get_next_key does not end on scribbled links")
		}
		cur = append(cur[:0], next...)
	}
}

// TestHashCorruptColdOffset: a descriptor whose cold parts lie outside the
// heap is refused at open.
func TestHashCorruptColdOffset(t *testing.T) {
	m := newInternalMap(t, Spec{Name: "h", Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
	m.d.Cold = 1 << 40
	if _, err := Open(m.region, m.rcu, "h", 0); err == nil {
		t.Fatal("opened a map whose cold parts are outside the region")
	}
}
