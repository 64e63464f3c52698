package maps_test

// TypedMap (the root package's typed view) over maps of this package, and
// the allocation-free hot path of both APIs.

import (
	"errors"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/maps"
)

type flowKey struct {
	Src, Dst uint32
	Port     uint16
	Proto    uint8
	Flags    uint8
}

type flowStats struct {
	Packets uint64
	Bytes   uint64
	Seen    [2]uint32
}

func TestTypedMapRoundTrip(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "flows", Type: maps.Hash, KeySize: 12, ValueSize: 24, MaxEntries: 64})
	tm, err := userbpf.NewTypedMap[flowKey, flowStats](m)
	noErr(t, "NewTypedMap", err)
	if tm.Map() != m {
		t.Errorf("Map() is not the map the view was made of")
	}
	want := map[flowKey]flowStats{}
	for i := range uint32(40) {
		k := flowKey{Src: i, Dst: ^i, Port: uint16(i * 7), Proto: 6, Flags: uint8(i)}
		v := flowStats{Packets: uint64(i), Bytes: uint64(i) << 40, Seen: [2]uint32{i, i + 1}}
		noErr(t, "update", tm.Update(k, v, maps.UpdateNoExist))
		want[k] = v
	}
	k0 := flowKey{Src: 0, Dst: ^uint32(0), Port: 0, Proto: 6, Flags: 0}
	wantErr(t, "NOEXIST update of a present key", tm.Update(k0, flowStats{}, maps.UpdateNoExist), maps.ErrKeyExist, syscall.EEXIST)
	for k, v := range want {
		got, err := tm.Lookup(k)
		if err != nil || got != v {
			t.Errorf("Lookup(%+v) = %+v, %v; want %+v", k, got, err, v)
		}
	}
	// The typed view and the raw API see the same bytes.
	raw := make([]byte, 24)
	noErr(t, "raw lookup", m.Lookup([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 6, 0}, raw, 0))
	if raw[16] != 0 || raw[20] != 1 {
		t.Errorf("raw value of key 0 = % x, want Seen = {0, 1} at offset 16", raw)
	}

	// All visits every key once, with its value.
	seen := map[flowKey]bool{}
	for k, v := range tm.All() {
		if seen[k] {
			t.Errorf("All yields %+v twice", k)
		}
		seen[k] = true
		if want[k] != v {
			t.Errorf("All yields %+v → %+v, want %+v", k, v, want[k])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("All yields %d keys, the map holds %d", len(seen), len(want))
	}
	// Stopping early stops.
	n := 0
	for range tm.All() {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("All after break: %d iterations", n)
	}
	// Deleting while iterating: every key still present is yielded.
	for k := range tm.All() {
		noErr(t, "delete while iterating", tm.Delete(k))
	}
	if c := m.Count(); c != 0 {
		t.Errorf("after deleting every key All yielded, Count() = %d", c)
	}
	if _, err := tm.Lookup(k0); !errors.Is(err, maps.ErrKeyNotExist) {
		t.Errorf("Lookup of a deleted key: %v, want ErrKeyNotExist", err)
	}
	wantErr(t, "Delete of a missing key", tm.Delete(k0), maps.ErrKeyNotExist, syscall.ENOENT)
}

func TestTypedMapRejects(t *testing.T) {
	r, _ := newRegion(t)
	h8 := createMap(t, r, maps.Spec{Name: "h8", Type: maps.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 4})
	h16 := createMap(t, r, maps.Spec{Name: "h16", Type: maps.Hash, KeySize: 16, ValueSize: 24, MaxEntries: 4})
	pc := createMap(t, r, maps.Spec{Name: "pc", Type: maps.PerCPUHash, KeySize: 8, ValueSize: 8, MaxEntries: 4})
	pa := createMap(t, r, maps.Spec{Name: "pa", Type: maps.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	lp := createMap(t, r, maps.Spec{Name: "lp", Type: maps.LRUPerCPUHash, KeySize: 8, ValueSize: 8, MaxEntries: 4})
	check := func(name string, err error) {
		t.Helper()
		wantErr(t, name, err, maps.ErrInvalid, syscall.EINVAL)
	}
	var err error
	_, err = userbpf.NewTypedMap[uint32, uint64](h8)
	check("4-byte key type on 8-byte keys", err)
	_, err = userbpf.NewTypedMap[uint64, uint32](h8)
	check("4-byte value type on 8-byte values", err)
	_, err = userbpf.NewTypedMap[uint64, [9]byte](h8)
	check("9-byte value type on 8-byte values", err)
	_, err = userbpf.NewTypedMap[uint64, *uint64](h8)
	check("pointer value", err)
	_, err = userbpf.NewTypedMap[*uint64, uint64](h8)
	check("pointer key", err)
	_, err = userbpf.NewTypedMap[uint64, struct{ P *int }](h8)
	check("struct holding a pointer", err)
	_, err = userbpf.NewTypedMap[uint64, map[int]int](h8)
	check("map value", err)
	_, err = userbpf.NewTypedMap[uint64, chan int](h8)
	check("chan value", err)
	_, err = userbpf.NewTypedMap[uint64, func()](h8)
	check("func value", err)
	_, err = userbpf.NewTypedMap[string, [24]byte](h16)
	check("string key", err)
	_, err = userbpf.NewTypedMap[[16]byte, []byte](h16)
	check("slice value", err)
	_, err = userbpf.NewTypedMap[[16]byte, struct {
		A [2]uint64
		S *flowStats
	}](h16)
	check("pointer nested after plain fields", err)
	_, err = userbpf.NewTypedMap[[16]byte, [3]any](h16)
	check("array of interfaces", err)
	_, err = userbpf.NewTypedMap[uint64, uint64](pc)
	check("per-CPU hash", err)
	_, err = userbpf.NewTypedMap[uint32, uint64](pa)
	check("per-CPU array", err)
	_, err = userbpf.NewTypedMap[uint64, uint64](lp)
	check("LRU per-CPU hash", err)

	// Fixed-size plain data is accepted.
	if _, err := userbpf.NewTypedMap[[2]uint32, float64](h8); err != nil {
		t.Errorf("[2]uint32 → float64: %v", err)
	}
	if _, err := userbpf.NewTypedMap[[16]byte, flowStats](h16); err != nil {
		t.Errorf("[16]byte → flowStats: %v", err)
	}
}

// paddedKey has 3 bytes of padding after A: their content is whatever the
// stack held, unless something zeroes it.
type paddedKey struct {
	A uint8
	B uint32
}

// dirtyStack fills a stretch of stack with b.
//
//go:noinline
func dirtyStack(b byte) (x [256]byte) {
	for i := range x {
		x[i] = b
	}
	return x
}

// TestTypedMapPaddedKey: a key type with padding either is refused, or the
// key stored by Update is found by Lookup of an equal key.
func TestTypedMapPaddedKey(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "pad", Type: maps.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 64})
	tm, err := userbpf.NewTypedMap[paddedKey, uint64](m)
	if err != nil {
		wantErr(t, "NewTypedMap of a padded key", err, maps.ErrInvalid, syscall.EINVAL)
		return
	}
	for i := range 16 {
		dirtyStack(0x11)
		noErr(t, "update", tm.Update(paddedKey{uint8(i), uint32(i)}, uint64(i), maps.UpdateAny))
	}
	for i := range 16 {
		dirtyStack(0x22)
		if v, err := tm.Lookup(paddedKey{uint8(i), uint32(i)}); err != nil || v != uint64(i) {
			t.Errorf("Lookup(%+v) = %d, %v after Update of an equal key", paddedKey{uint8(i), uint32(i)}, v, err)
		}
	}
	if c := m.Count(); c != 16 {
		t.Errorf("16 updates of 16 distinct keys made %d elements", c)
	}
}

// TestZeroAllocs: typed and raw (caller's buffers) lookups and updates,
// hits and misses, allocate nothing, on hashes and arrays.
func TestZeroAllocs(t *testing.T) {
	r, _ := newRegion(t)
	h := createMap(t, r, maps.Spec{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	a := createMap(t, r, maps.Spec{Name: "a", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	for _, m := range []*maps.Map{h, a} {
		tm, err := userbpf.NewTypedMap[uint32, uint64](m)
		noErr(t, "NewTypedMap", err)
		for i := range uint32(512) {
			noErr(t, "update", tm.Update(i, uint64(i), maps.UpdateAny))
		}
		var sink uint64
		k := uint32(0)
		allocs := map[string]float64{
			"typed lookup": testing.AllocsPerRun(1000, func() {
				v, _ := tm.Lookup(k % 512)
				sink += v
				k++
			}),
			"typed update": testing.AllocsPerRun(1000, func() {
				tm.Update(k%512, uint64(k), maps.UpdateAny)
				k++
			}),
		}
		key, val := make([]byte, 4), make([]byte, 8)
		allocs["raw lookup"] = testing.AllocsPerRun(1000, func() {
			key[0] = byte(k)
			m.Lookup(key, val, 0)
			k++
		})
		allocs["raw update"] = testing.AllocsPerRun(1000, func() {
			key[0] = byte(k)
			m.Update(key, val, maps.UpdateAny)
			k++
		})
		if m.Type() == maps.Hash {
			miss := key32(100000)
			allocs["raw lookup miss"] = testing.AllocsPerRun(1000, func() { m.Lookup(miss, val, 0) })
			allocs["typed lookup miss"] = testing.AllocsPerRun(1000, func() { tm.Lookup(100000) })
			if err := m.Lookup(miss, val, 0); !errors.Is(err, maps.ErrKeyNotExist) {
				t.Errorf("miss: %v", err)
			}
		}
		for what, n := range allocs {
			if n != 0 {
				t.Errorf("%s: %s allocates %.1f times per call, want 0", m.Type(), what, n)
			}
		}
		_ = sink
	}
}
