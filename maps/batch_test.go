package maps_test

// The four batch commands: cursor loops, ENOSPC, stopping at the first
// error with the count processed, and the kernel's support matrix.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/maps"
)

// batchAll runs a lookup batch (or lookup-and-delete batch) cursor loop
// with buffers of room elements, growing them on ENOSPC, and returns each
// key → value it was given. It fails on a key given twice.
func batchAll(t *testing.T, m *maps.Map, room int, del bool) map[uint32][]byte {
	t.Helper()
	got := map[uint32][]byte{}
	vs := m.UserValueSize()
	var in []byte
	out := make([]byte, 4)
	for calls := 0; ; calls++ {
		if calls > 10000 {
			t.Fatal("batch loop does not end")
		}
		keys, vals := make([]byte, room*4), make([]byte, room*vs)
		var n int
		var err error
		if del {
			n, err = m.LookupAndDeleteBatch(in, out, keys, vals, 0, 0)
		} else {
			n, err = m.LookupBatch(in, out, keys, vals, 0, 0)
		}
		if errors.Is(err, maps.ErrNoSpace) {
			if n != 0 {
				t.Fatalf("ENOSPC with %d elements copied", n)
			}
			room *= 2
			continue
		}
		if err != nil && !errors.Is(err, maps.ErrKeyNotExist) {
			t.Fatalf("batch: %v", err)
		}
		for i := range n {
			k := binary.NativeEndian.Uint32(keys[i*4:])
			if _, dup := got[k]; dup {
				t.Errorf("batch gives key %d twice", k)
			}
			got[k] = vals[i*vs : (i+1)*vs]
		}
		if err != nil {
			if !errors.Is(err, syscall.ENOENT) {
				t.Errorf("end of the batch loop: %v, want ENOENT", err)
			}
			return got
		}
		in = append(in[:0], out...)
	}
}

// batchValue is the value the batch tests store under key k, per CPU.
func batchValue(m *maps.Map, k uint32) []byte {
	v := make([]byte, m.UserValueSize())
	for i := 0; i+8 <= len(v); i += 8 {
		binary.NativeEndian.PutUint64(v[i:], uint64(k)<<32|uint64(i))
	}
	return v
}

func TestLookupBatchCursorLoop(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.Hash, maps.PerCPUHash, maps.LRUHash, maps.Array, maps.PerCPUArray} {
		for _, room := range []int{1, 3, 64, 1000} {
			t.Run(fmt.Sprintf("%s/room=%d", typ, room), func(t *testing.T) {
				name := fmt.Sprintf("lb_%s_%d", typ, room)
				m := createMap(t, r, maps.Spec{Name: name, Type: typ, KeySize: 4, ValueSize: 16, MaxEntries: 256})
				want := map[uint32]bool{}    // keys the loop must give
				written := map[uint32]bool{} // keys with a value stored
				for k := uint32(0); k < 256; k += 1 + k%3 {
					noErr(t, "update", m.Update(key32(k), batchValue(m, k), maps.UpdateAny))
					want[k], written[k] = true, true
				}
				if typ == maps.Array || typ == maps.PerCPUArray {
					for k := range uint32(256) {
						want[k] = true // every index exists, zero until written
					}
				}
				got := batchAll(t, m, room, false)
				for k, v := range got {
					if !want[k] {
						t.Errorf("batch gives key %d, not in the map", k)
						continue
					}
					exp := make([]byte, m.UserValueSize())
					if written[k] {
						exp = batchValue(m, k)
					}
					if !bytes.Equal(v, exp) {
						t.Errorf("key %d: batch value % x, want % x", k, v, exp)
					}
				}
				for k := range want {
					if _, ok := got[k]; !ok {
						t.Errorf("key %d in the map, not given by the batch loop", k)
					}
				}
			})
		}
	}
}

// collidingPair finds two keys that share a bucket of a 2-bucket hash: a
// lookup batch with room for one element then returns ENOSPC.
func collidingPair(t *testing.T, m *maps.Map) (a, b uint32) {
	t.Helper()
	v := make([]byte, m.UserValueSize())
	for b := uint32(1); b < 64; b++ {
		noErr(t, "update", m.Update(key32(0), v, maps.UpdateAny))
		noErr(t, "update", m.Update(key32(b), v, maps.UpdateAny))
		keys, vals := make([]byte, 4), make([]byte, len(v))
		_, err := m.LookupBatch(nil, make([]byte, 4), keys, vals, 0, 0)
		if errors.Is(err, maps.ErrNoSpace) {
			return 0, b
		}
		noErr(t, "delete", m.Delete(key32(b)))
	}
	t.Fatal("no two keys of 64 share a bucket of 2")
	return
}

func TestBatchNoSpace(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "ns", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	collidingPair(t, m)
	for _, del := range []bool{false, true} {
		keys, vals := bytes.Repeat([]byte{0xaa}, 4), bytes.Repeat([]byte{0xbb}, 8)
		out := []byte{0xcc, 0xcc, 0xcc, 0xcc}
		var n int
		var err error
		if del {
			n, err = m.LookupAndDeleteBatch(nil, out, keys, vals, 0, 0)
		} else {
			n, err = m.LookupBatch(nil, out, keys, vals, 0, 0)
		}
		wantErr(t, fmt.Sprintf("batch (delete %v) with room for 1 of a 2-element bucket", del), err, maps.ErrNoSpace, syscall.ENOSPC)
		if n != 0 || !bytes.Equal(keys, bytes.Repeat([]byte{0xaa}, 4)) || !bytes.Equal(vals, bytes.Repeat([]byte{0xbb}, 8)) {
			t.Errorf("ENOSPC batch (delete %v): count %d, keys % x, values % x; want nothing copied", del, n, keys, vals)
		}
		if c := m.Count(); c != 2 {
			t.Errorf("ENOSPC batch (delete %v): Count() = %d, want both elements kept", del, c)
		}
	}
	// With room for the bucket the same call succeeds.
	keys, vals := make([]byte, 8), make([]byte, 16)
	n, err := m.LookupBatch(nil, make([]byte, 4), keys, vals, 0, 0)
	if n != 2 || err != nil && !errors.Is(err, maps.ErrKeyNotExist) {
		t.Errorf("batch with room for 2: %d, %v", n, err)
	}
	// Empty buffers copy nothing and succeed.
	if n, err := m.LookupBatch(nil, make([]byte, 4), nil, nil, 0, 0); n != 0 || err != nil {
		t.Errorf("batch with no room: %d, %v; want 0, nil", n, err)
	}
}

func TestLookupAndDeleteBatchEmpties(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.Hash, maps.PerCPUHash, maps.LRUHash, maps.LRUPerCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m := createMap(t, r, maps.Spec{Name: "ld" + typ.String(), Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 512})
			for k := range uint32(300) {
				noErr(t, "update", m.Update(key32(k), batchValue(m, k), maps.UpdateAny))
			}
			got := batchAll(t, m, 5, true)
			if len(got) != 300 {
				t.Errorf("lookup-and-delete batch loop gave %d keys, the map held 300", len(got))
			}
			for k, v := range got {
				if !bytes.Equal(v, batchValue(m, k)) {
					t.Errorf("key %d: value % x, want % x", k, v, batchValue(m, k))
				}
			}
			if c := m.Count(); c != 0 {
				t.Errorf("Count() = %d after the lookup-and-delete batch loop", c)
			}
			if keys, err := walk(m, 1000); err != nil || len(keys) != 0 {
				t.Errorf("walk after the loop: %d keys, %v", len(keys), err)
			}
			// The elements came back: the map fills to max_entries again.
			for k := range uint32(512) {
				noErr(t, "refill", m.Update(key32(k), batchValue(m, k), maps.UpdateNoExist))
			}
		})
	}
}

func TestUpdateAndDeleteBatchStopAtFirstError(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "ub", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 5})
	keysOf := func(ks ...uint32) []byte {
		var b []byte
		for _, k := range ks {
			b = append(b, key32(k)...)
		}
		return b
	}
	vals := make([]byte, 8*4)
	n, err := m.UpdateBatch(keysOf(1, 2, 3), vals[:24], maps.UpdateAny, 0)
	if n != 3 || err != nil {
		t.Errorf("update batch of 3 keys: %d, %v", n, err)
	}
	n, err = m.UpdateBatch(keysOf(10, 11, 12, 13), vals, maps.UpdateAny, 0)
	wantErr(t, "update batch past max_entries", err, maps.ErrFull, syscall.E2BIG)
	if n != 2 {
		t.Errorf("update batch into a map with 2 free places processed %d, want 2", n)
	}
	for _, k := range []uint32{12, 13} {
		if err := m.Lookup(key32(k), make([]byte, 8), 0); !errors.Is(err, maps.ErrKeyNotExist) {
			t.Errorf("key %d, after the failing one, was stored: %v", k, err)
		}
	}
	// elem_flags take only BPF_F_LOCK: the kernel (6.18, probed) refuses
	// BPF_NOEXIST and BPF_EXIST there, before processing anything.
	for _, f := range []uint64{maps.UpdateNoExist, maps.UpdateExist} {
		n, err = m.UpdateBatch(keysOf(1), vals[:8], f, 0)
		wantErr(t, fmt.Sprintf("update batch with elem_flags %d", f), err, maps.ErrInvalid, syscall.EINVAL)
		if n != 0 {
			t.Errorf("update batch with elem_flags %d processed %d", f, n)
		}
	}

	n, err = m.DeleteBatch(keysOf(1, 2, 9, 3), 0)
	wantErr(t, "delete batch with a missing key", err, maps.ErrKeyNotExist, syscall.ENOENT)
	if n != 2 {
		t.Errorf("delete batch processed %d, want 2", n)
	}
	if err := m.Lookup(key32(3), make([]byte, 8), 0); err != nil {
		t.Errorf("key after the failing one was deleted: %v", err)
	}
	if c := m.Count(); c != 3 {
		t.Errorf("Count() = %d, want 3 (keys 3, 10, 11)", c)
	}
	n, err = m.DeleteBatch(keysOf(3, 10, 11), 0)
	if n != 3 || err != nil {
		t.Errorf("delete batch: %d, %v", n, err)
	}

	// Buffers that are not whole elements.
	_, err = m.UpdateBatch(key32(1)[:3], vals[:8], 0, 0)
	wantErr(t, "update batch with 3 key bytes", err, maps.ErrInvalid, syscall.EINVAL)
	_, err = m.UpdateBatch(keysOf(1, 2), vals[:8], 0, 0)
	wantErr(t, "update batch with values for 1 of 2 keys", err, maps.ErrInvalid, syscall.EINVAL)
	_, err = m.UpdateBatch(keysOf(1), vals[:8], maps.FlagLock, 0)
	wantErr(t, "update batch with FlagLock on a map without a lock", err, maps.ErrInvalid, syscall.EINVAL)
	_, err = m.LookupBatch(nil, make([]byte, 4), keysOf(1), vals[:8], 0, 1)
	wantErr(t, "hash lookup batch with flags", err, maps.ErrInvalid, syscall.EINVAL)
}

func TestArrayBatches(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.Array, maps.PerCPUArray} {
		t.Run(typ.String(), func(t *testing.T) {
			m := createMap(t, r, maps.Spec{Name: "ab" + typ.String(), Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 10})
			keys, vals := make([]byte, 4*4), make([]byte, 4*m.UserValueSize())
			_, err := m.DeleteBatch(keys, 0)
			wantErr(t, "array delete batch", err, maps.ErrNotSupported, syscall.Errno(524))
			_, err = m.LookupAndDeleteBatch(nil, make([]byte, 4), keys, vals, 0, 0)
			wantErr(t, "array lookup-and-delete batch", err, maps.ErrNotSupported, syscall.Errno(524))
			if errors.Is(err, syscall.EOPNOTSUPP) {
				t.Errorf("ENOTSUPP (524) must not match EOPNOTSUPP (95): %v", err)
			}
			// Update batch: indexes 7, 8, 9, 10 — the last is past the end.
			for i, k := range []uint32{7, 8, 9, 10} {
				binary.NativeEndian.PutUint32(keys[i*4:], k)
				copy(vals[i*m.UserValueSize():], batchValue(m, k))
			}
			n, err := m.UpdateBatch(keys, vals, 0, 0)
			wantErr(t, "array update batch past max_entries", err, maps.ErrFull, syscall.E2BIG)
			if n != 3 {
				t.Errorf("array update batch processed %d, want 3", n)
			}
			// Lookup batch: the cursor is the last key given; the loop
			// yields the indexes in order.
			var in []byte
			out := make([]byte, 4)
			var order []uint32
			for {
				n, err := m.LookupBatch(in, out, keys, vals, 0, 0)
				for i := range n {
					k := binary.NativeEndian.Uint32(keys[i*4:])
					order = append(order, k)
					want := make([]byte, m.UserValueSize())
					if k >= 7 {
						want = batchValue(m, k)
					}
					if got := vals[i*m.UserValueSize() : (i+1)*m.UserValueSize()]; !bytes.Equal(got, want) {
						t.Errorf("index %d: % x, want % x", k, got, want)
					}
				}
				if err != nil {
					wantErr(t, "end of the array batch loop", err, maps.ErrKeyNotExist, syscall.ENOENT)
					break
				}
				if n == 0 || len(order) > 20 {
					t.Fatalf("array batch loop stuck: %d, %v after %v", n, err, order)
				}
				in = append(in[:0], out...)
			}
			if fmt.Sprint(order) != "[0 1 2 3 4 5 6 7 8 9]" {
				t.Errorf("array lookup batch order %v, want 0..9", order)
			}
		})
	}
}
