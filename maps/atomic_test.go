package maps_test

// Atomics on value words across processes (what programs' BPF_ATOMIC
// instructions do on the same words), and their single-process contract.

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

// The atomics test's 32-byte value:
//
//	0   a u64   AtomicAdd 1 (8 bytes)
//	8   b u32   AtomicAdd 1 (4 bytes), starting at bWrap so it wraps
//	12  c u32   AtomicAdd 3 (4 bytes): a 4-byte add that carried out of b would show here
//	16  d u64   CmpXchg loop +1 (8 bytes)
//	24  e u32   CmpXchg loop +1 (4 bytes)
//	28  f u32   AtomicOr 1<<child
const (
	atomicValueSize = 32
	bWrap           = 0xffffff00
)

// atomicIter is one child iteration on key's value: every word's op once.
func atomicIter(m *maps.Map, key []byte, id int) error {
	steps := []struct {
		off  uint32
		size int
		op   maps.AtomicOp
		arg  uint64
	}{
		{0, 8, maps.AtomicAdd, 1},
		{8, 4, maps.AtomicAdd, 1},
		{12, 4, maps.AtomicAdd, 3},
		{28, 4, maps.AtomicOr, 1 << id},
	}
	for _, s := range steps {
		if _, err := m.Atomic(key, s.off, s.size, s.op, s.arg, 0); err != nil {
			return fmt.Errorf("atomic %d at %d: %v", s.op, s.off, err)
		}
	}
	// Compare-and-exchange increments: read with an add of 0, then retry
	// with the value CmpXchg returns until it equals the one compared.
	for _, w := range []struct {
		off  uint32
		size int
	}{{16, 8}, {24, 4}} {
		cur, err := m.Atomic(key, w.off, w.size, maps.AtomicAdd, 0, 0)
		if err != nil {
			return err
		}
		for {
			old, err := m.Atomic(key, w.off, w.size, maps.AtomicCmpXchg, cur+1, cur)
			if err != nil {
				return err
			}
			if old == cur {
				break
			}
			cur = old
		}
	}
	return nil
}

// atomics: path name keysize id n — n iterations of atomicIter on key 1.
var _ = proctest.Register("atomics", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	key := key64(1)
	if args[2] == "4" {
		key = key32(1)
	}
	id, _ := strconv.Atoi(args[3])
	n, _ := strconv.Atoi(args[4])
	proctest.Ready("ready")
	awaitLine()
	for range n {
		if err := atomicIter(m, key, id); err != nil {
			return err
		}
	}
	return nil
})

func TestAtomicsAcrossProcesses(t *testing.T) {
	const procs = 4
	n := scaled(50000, 5000)
	total := uint64(procs * n)
	for _, typ := range []maps.Type{maps.Array, maps.Hash, maps.LRUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			r, path := newRegion(t)
			ks, key := uint32(8), key64(1)
			if typ == maps.Array {
				ks, key = 4, key32(1)
			}
			m := createMap(t, r, maps.Spec{Name: "at", Type: typ, KeySize: ks, ValueSize: atomicValueSize, MaxEntries: 4})
			v := make([]byte, atomicValueSize)
			binary.NativeEndian.PutUint32(v[8:], bWrap)
			noErr(t, "update", m.Update(key, v, maps.UpdateAny))
			cs := startAll(t, procs, "atomics", func(i int) []string {
				return []string{path, "at", strconv.Itoa(int(ks)), strconv.Itoa(i), strconv.Itoa(n)}
			})
			for _, c := range cs {
				c.Wait(t)
			}
			noErr(t, "lookup", m.Lookup(key, v, 0))
			for _, w := range []struct {
				name      string
				got, want uint64
			}{
				{"a (8-byte add)", binary.NativeEndian.Uint64(v[0:]), total},
				{"b (4-byte add, wrapping)", uint64(binary.NativeEndian.Uint32(v[8:])), uint64(uint32(bWrap + total))},
				{"c (4-byte add next to b)", uint64(binary.NativeEndian.Uint32(v[12:])), uint64(uint32(3 * total))},
				{"d (8-byte cmpxchg loop)", binary.NativeEndian.Uint64(v[16:]), total},
				{"e (4-byte cmpxchg loop)", uint64(binary.NativeEndian.Uint32(v[24:])), uint64(uint32(total))},
				{"f (4-byte or)", uint64(binary.NativeEndian.Uint32(v[28:])), 1<<procs - 1},
			} {
				if w.got != w.want {
					t.Errorf("%s = %#x after %d processes × %d iterations, want %#x", w.name, w.got, procs, n, w.want)
				}
			}
		})
	}
}

// TestAtomicSemantics: each operation's result and previous value, for 8-
// and 4-byte words, and that a 4-byte operation touches only its word.
func TestAtomicSemantics(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "sem", Type: maps.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 4})
	key := key32(7)
	set := func(w0 uint64, w2, w3 uint32) {
		t.Helper()
		v := make([]byte, 16)
		binary.NativeEndian.PutUint64(v, w0)
		binary.NativeEndian.PutUint32(v[8:], w2)
		binary.NativeEndian.PutUint32(v[12:], w3)
		noErr(t, "update", m.Update(key, v, maps.UpdateAny))
	}
	get := func() (uint64, uint32, uint32) {
		t.Helper()
		v := make([]byte, 16)
		noErr(t, "lookup", m.Lookup(key, v, 0))
		return binary.NativeEndian.Uint64(v), binary.NativeEndian.Uint32(v[8:]), binary.NativeEndian.Uint32(v[12:])
	}
	for _, tc := range []struct {
		name         string
		off          uint32
		size         int
		op           maps.AtomicOp
		arg, cmp     uint64
		wantOld      uint64
		want0        uint64
		want2, want3 uint32
		init0        uint64
		init2, init3 uint32
	}{
		{"add8", 0, 8, maps.AtomicAdd, 5, 0, 10, 15, 0xaaaaaaaa, 0xbbbbbbbb, 10, 0xaaaaaaaa, 0xbbbbbbbb},
		{"add8 wraps", 0, 8, maps.AtomicAdd, 2, 0, 1<<64 - 1, 1, 1, 2, 1<<64 - 1, 1, 2},
		{"and8", 0, 8, maps.AtomicAnd, 0xff00ff, 0, 0xf0f0f0, 0xf000f0, 0, 0, 0xf0f0f0, 0, 0},
		{"or8", 0, 8, maps.AtomicOr, 1 << 63, 0, 1, 1<<63 | 1, 0, 0, 1, 0, 0},
		{"xor8", 0, 8, maps.AtomicXor, 0b1010, 0, 0b0110, 0b1100, 0, 0, 0b0110, 0, 0},
		{"xchg8", 0, 8, maps.AtomicXchg, 99, 0, 42, 99, 0, 0, 42, 0, 0},
		{"cmpxchg8 equal", 0, 8, maps.AtomicCmpXchg, 99, 42, 42, 99, 0, 0, 42, 0, 0},
		{"cmpxchg8 differs", 0, 8, maps.AtomicCmpXchg, 99, 41, 42, 42, 0, 0, 42, 0, 0},
		{"add4 wraps without carry", 8, 4, maps.AtomicAdd, 1, 0, 0xffffffff, 7, 0, 5, 7, 0xffffffff, 5},
		{"add4 upper word", 12, 4, maps.AtomicAdd, 1, 0, 0xffffffff, 7, 5, 0, 7, 5, 0xffffffff},
		{"add4 takes the low 32 bits of the operand", 8, 4, maps.AtomicAdd, 1<<32 | 3, 0, 1, 0, 4, 9, 0, 1, 9},
		{"and4", 8, 4, maps.AtomicAnd, 0x0f, 0, 0xff, 0, 0x0f, 0xffffffff, 0, 0xff, 0xffffffff},
		{"or4", 12, 4, maps.AtomicOr, 0x100, 0, 1, 0, 0, 0x101, 0, 0, 1},
		{"xor4", 12, 4, maps.AtomicXor, 0xffffffff, 0, 0x0f0f0f0f, 0, 0, 0xf0f0f0f0, 0, 0, 0x0f0f0f0f},
		{"xchg4", 8, 4, maps.AtomicXchg, 3, 0, 8, 0, 3, 4, 0, 8, 4},
		{"cmpxchg4 equal", 8, 4, maps.AtomicCmpXchg, 3, 8, 8, 0, 3, 4, 0, 8, 4},
		{"cmpxchg4 compares the low 32 bits", 8, 4, maps.AtomicCmpXchg, 3, 1<<32 | 8, 8, 0, 3, 4, 0, 8, 4},
		{"cmpxchg4 differs", 8, 4, maps.AtomicCmpXchg, 3, 9, 8, 0, 8, 4, 0, 8, 4},
	} {
		set(tc.init0, tc.init2, tc.init3)
		old, err := m.Atomic(key, tc.off, tc.size, tc.op, tc.arg, tc.cmp)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		w0, w2, w3 := get()
		if old != tc.wantOld || w0 != tc.want0 || w2 != tc.want2 || w3 != tc.want3 {
			t.Errorf("%s: old %#x, value {%#x %#x %#x}; want old %#x, value {%#x %#x %#x}",
				tc.name, old, w0, w2, w3, tc.wantOld, tc.want0, tc.want2, tc.want3)
		}
	}
}

// TestAtomicErrors: sizes, alignment, bounds, the lock word, the op, the
// key and the handle's rights.
func TestAtomicErrors(t *testing.T) {
	r, _ := newRegion(t)
	// {u64 @0, lock @8, u32 @12, u64 @16}
	m := createMap(t, r, maps.Spec{Name: "ae", Type: maps.Array, KeySize: 4, ValueSize: 24, MaxEntries: 2,
		HasLock: true, LockOffset: 8})
	key := key32(1)
	for _, tc := range []struct {
		name string
		off  uint32
		size int
		op   maps.AtomicOp
	}{
		{"size 2", 0, 2, maps.AtomicAdd},
		{"size 1", 0, 1, maps.AtomicAdd},
		{"size 16", 0, 16, maps.AtomicAdd},
		{"size 0", 0, 0, maps.AtomicAdd},
		{"8 bytes at 4 (misaligned)", 4, 8, maps.AtomicAdd},
		{"4 bytes at 2 (misaligned)", 2, 4, maps.AtomicAdd},
		{"8 bytes at 20 (misaligned, past the end)", 20, 8, maps.AtomicAdd},
		{"4 bytes at 24 (past the end)", 24, 4, maps.AtomicAdd},
		{"8 bytes at 24 (past the end)", 24, 8, maps.AtomicAdd},
		{"huge offset", 1<<32 - 4, 4, maps.AtomicAdd},
		{"4 bytes on the lock", 8, 4, maps.AtomicAdd},
		{"8 bytes over the lock", 8, 8, maps.AtomicXchg},
		{"op -1", 0, 8, maps.AtomicOp(-1)},
		{"op 6", 0, 8, maps.AtomicCmpXchg + 1},
	} {
		_, err := m.Atomic(key, tc.off, tc.size, tc.op, 1, 0)
		wantErr(t, tc.name, err, maps.ErrInvalid, syscall.EINVAL)
	}
	// The words next to the lock are fine.
	for _, w := range []struct {
		off  uint32
		size int
	}{{0, 8}, {0, 4}, {4, 4}, {12, 4}, {16, 8}, {20, 4}} {
		if _, err := m.Atomic(key, w.off, w.size, maps.AtomicAdd, 1, 0); err != nil {
			t.Errorf("%d bytes at %d: %v", w.size, w.off, err)
		}
	}
	v := make([]byte, 24)
	noErr(t, "lookup", m.Lookup(key, v, 0))
	if binary.NativeEndian.Uint32(v[8:]) != 0 {
		t.Errorf("lock word = %#x after atomics next to it", binary.NativeEndian.Uint32(v[8:]))
	}
	_, err := m.Atomic(key32(2), 0, 8, maps.AtomicAdd, 1, 0)
	wantErr(t, "index past max_entries", err, maps.ErrKeyNotExist, syscall.ENOENT)
	_, err = m.Atomic([]byte{1, 0}, 0, 8, maps.AtomicAdd, 1, 0)
	wantErr(t, "short key", err, maps.ErrInvalid, syscall.EINVAL)

	h := createMap(t, r, maps.Spec{Name: "ah", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	_, err = h.Atomic(key32(1), 0, 8, maps.AtomicAdd, 1, 0)
	wantErr(t, "missing hash key", err, maps.ErrKeyNotExist, syscall.ENOENT)

	ro, err := r.OpenMap("ae", maps.FlagRdOnly)
	noErr(t, "open read-only", err)
	_, err = ro.Atomic(key, 0, 8, maps.AtomicAdd, 1, 0)
	wantErr(t, "atomic through a read-only handle", err, maps.ErrPermission, syscall.EPERM)
}

// TestAtomicPerCPU: on per-CPU maps the offset addresses the ncpu ×
// round_up(value_size, 8) layout, so each CPU's copy can be updated.
func TestAtomicPerCPU(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.PerCPUArray, maps.PerCPUHash} {
		m := createMap(t, r, maps.Spec{Name: "pc" + typ.String(), Type: typ, KeySize: 4, ValueSize: 12, MaxEntries: 2})
		key := key32(1)
		noErr(t, "update", m.Update(key, make([]byte, m.UserValueSize()), maps.UpdateAny))
		stride := uint32(16) // round_up(12, 8)
		for c := range uint32(m.NumCPU()) {
			if _, err := m.Atomic(key, c*stride+8, 4, maps.AtomicAdd, uint64(c+1), 0); err != nil {
				t.Errorf("%s: cpu %d: %v", typ, c, err)
			}
		}
		v := make([]byte, m.UserValueSize())
		noErr(t, "lookup", m.Lookup(key, v, 0))
		for c := range uint32(m.NumCPU()) {
			if got := binary.NativeEndian.Uint32(v[c*stride+8:]); got != c+1 {
				t.Errorf("%s: cpu %d word = %d, want %d", typ, c, got, c+1)
			}
		}
		_, err := m.Atomic(key, uint32(m.NumCPU())*stride, 4, maps.AtomicAdd, 1, 0)
		wantErr(t, typ.String()+": past the last CPU's copy", err, maps.ErrInvalid, syscall.EINVAL)
	}
}
