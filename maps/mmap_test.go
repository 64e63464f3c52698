package maps_test

// Zero-copy arrays: with BPF_F_MMAPABLE the values are page-aligned and a
// stable pointer to a slot is shared memory every attached process sees.

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

const (
	mmapValueSize = 24 // a stride that is not a power of two
	mmapEntries   = 400
)

// slotBytes is the value of array slot i through its pointer.
func slotBytes(m *maps.Map, i uint32) ([]byte, error) {
	p, err := m.ValuePointer(i)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), m.ValueSize()), nil
}

// slotPattern is what the writer of generation gen puts in slot i.
func slotPattern(v []byte, i, gen uint32) {
	for w := 0; w < len(v)/8; w++ {
		binary.NativeEndian.PutUint64(v[w*8:], uint64(gen)<<48|uint64(i)<<16|uint64(w))
	}
}

// mmapchild: path name — check with Lookup that every slot holds the
// parent's generation 1 (written through its pointers), write generation
// 2 through this process's own pointers, print "written"; then, told
// "add N", add 1 N times to slot 0's first word with sync/atomic through
// the pointer, and print "added".
var _ = proctest.Register("mmapchild", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	want, got := make([]byte, mmapValueSize), make([]byte, mmapValueSize)
	for i := range uint32(mmapEntries) {
		slotPattern(want, i, 1)
		if err := m.Lookup(key32(i), got, 0); err != nil {
			return err
		}
		if string(got) != string(want) {
			return fmt.Errorf("slot %d: lookup % x, the parent wrote % x through its pointer", i, got, want)
		}
		v, err := slotBytes(m, i)
		if err != nil {
			return err
		}
		slotPattern(v, i, 2)
	}
	proctest.Ready("written")
	var n int
	if _, err := fmt.Sscanf(awaitLine(), "add %d", &n); err != nil {
		return err
	}
	p, err := m.ValuePointer(0)
	if err != nil {
		return err
	}
	w := (*atomic.Uint64)(p)
	for range n {
		w.Add(1)
	}
	proctest.Ready("added")
	return nil
})

func TestMmapableArrayZeroCopy(t *testing.T) {
	r, path := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "mm", Type: maps.Array, KeySize: 4, ValueSize: mmapValueSize,
		MaxEntries: mmapEntries, Flags: maps.FlagMmapable})
	p0, err := m.ValuePointer(0)
	noErr(t, "value pointer", err)
	if a := uintptr(p0) % uintptr(os.Getpagesize()); a != 0 {
		t.Errorf("slot 0 of an mmapable array is at %p, %d bytes past a page boundary", p0, a)
	}
	for i := range uint32(mmapEntries) {
		p, err := m.ValuePointer(i)
		noErr(t, "value pointer", err)
		if want := unsafe.Add(p0, uintptr(i)*mmapValueSize); p != want {
			t.Fatalf("slot %d at %p, want %p (slot 0 + i × stride)", i, p, want)
		}
		v, _ := slotBytes(m, i)
		slotPattern(v, i, 1)
	}
	c := startChild(t, "mmapchild", path, "mm")
	c.Expect(t, "written")
	want, got := make([]byte, mmapValueSize), make([]byte, mmapValueSize)
	for i := range uint32(mmapEntries) {
		slotPattern(want, i, 2)
		noErr(t, "lookup", m.Lookup(key32(i), got, 0))
		if string(got) != string(want) {
			t.Fatalf("slot %d: lookup % x, the child wrote % x through its pointer", i, got, want)
		}
	}

	// Both processes add to the same word through their own pointers.
	n := scaled(200000, 50000)
	w := (*atomic.Uint64)(p0)
	w.Store(0)
	c.tell(t, "add "+strconv.Itoa(n))
	for range n {
		w.Add(1)
	}
	c.Expect(t, "added")
	c.Wait(t)
	noErr(t, "lookup", m.Lookup(key32(0), got, 0))
	if sum := binary.NativeEndian.Uint64(got); sum != uint64(2*n) {
		t.Errorf("word = %d after 2 processes × %d atomic adds through value pointers, want %d", sum, n, 2*n)
	}
}

func TestValuePointerErrors(t *testing.T) {
	r, _ := newRegion(t)
	a := createMap(t, r, maps.Spec{Name: "a", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: maps.FlagMmapable})
	_, err := a.ValuePointer(4)
	wantErr(t, "value pointer past max_entries", err, maps.ErrKeyNotExist, syscall.ENOENT)
	h := createMap(t, r, maps.Spec{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	_, err = h.ValuePointer(0)
	wantErr(t, "value pointer of a hash", err, maps.ErrInvalid, syscall.EINVAL)
	// A plain (not mmapable) array still has stable 8-aligned slots.
	pa := createMap(t, r, maps.Spec{Name: "pa", Type: maps.Array, KeySize: 4, ValueSize: 12, MaxEntries: 4})
	p, err := pa.ValuePointer(3)
	noErr(t, "value pointer", err)
	if uintptr(p)%8 != 0 {
		t.Errorf("array slot at %p is not 8-aligned", p)
	}
}
