package maps_test

// RINGBUF and USER_RINGBUF through the generic command layer: creation
// rules and errno as Linux 6.18 gives them (probed with bpf(2)), element and
// batch commands refused with ENOTSUPP, and a ring created in one process
// opened by name in another. Producing and consuming are tested in package
// ringbuf.

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/internal/errno"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

// ringCreateCases are the creation attributes the tests try, and whether
// Linux 6.18 accepts them.
var ringCreateCases = []struct {
	key, value, entries, flags uint32
	ok                         bool
}{
	{0, 0, 4096, 0, true},
	{0, 0, 8192, 0, true},
	{0, 0, 1 << 20, maps.FlagNumaNode, true},
	{0, 0, 12288, 0, false}, // a page multiple, not a power of 2
	{0, 0, 2048, 0, false},  // a power of 2 below a page
	{0, 0, 4095, 0, false},
	{0, 0, 0, 0, false},
	{4, 0, 4096, 0, false},
	{0, 4, 4096, 0, false},
	{0, 0, 4096, maps.FlagNoPrealloc, false},
	{0, 0, 4096, maps.FlagRdOnly, false}, // the ring's flag mask has no access flags
	{0, 0, 4096, maps.FlagWrOnly, false},
	{0, 0, 4096, maps.FlagRdOnlyProg, false},
	{0, 0, 4096, maps.FlagWrOnlyProg, false},
	{0, 0, 4096, maps.FlagMmapable, false},
	{0, 0, 4096, 1 << 19, false}, // BPF_F_RB_OVERWRITE: newer than 6.18
}

func TestRingbufCreate(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.RingBuf, maps.UserRingBuf} {
		for i, c := range ringCreateCases {
			s := maps.Spec{Name: fmt.Sprintf("%s_%d", typ, i), Type: typ, KeySize: c.key, ValueSize: c.value, MaxEntries: c.entries, Flags: c.flags}
			m, err := r.CreateMap(s)
			if c.ok {
				noErr(t, s.String(), err)
				if m.Type() != typ || m.MaxEntries() != c.entries || m.KeySize() != 0 || m.ValueSize() != 0 {
					t.Errorf("%s: created %s entries %d", s.String(), m.Type(), m.MaxEntries())
				}
				continue
			}
			wantErr(t, s.String(), err, maps.ErrInvalid, syscall.EINVAL)
		}
		_, err := r.CreateMap(maps.Spec{Name: "locked", Type: typ, MaxEntries: 4096, HasLock: true})
		wantErr(t, "ring with a lock", err, maps.ErrInvalid, syscall.EINVAL)
	}
	if typ, ok := maps.ParseType("ringbuf"); !ok || typ != maps.RingBuf || maps.RingBuf.String() != "ringbuf" {
		t.Errorf("type name ringbuf: %v %v", typ, ok)
	}
	if typ, ok := maps.ParseType("user_ringbuf"); !ok || typ != maps.UserRingBuf || maps.UserRingBuf.String() != "user_ringbuf" {
		t.Errorf("type name user_ringbuf: %v %v", typ, ok)
	}
}

// Every element command is ENOTSUPP (524) with a nil key, EINVAL with a
// key, as bpf(2) answers for a ring buffer; flag checks of the generic layer
// come first. Batches are ENOTSUPP; freeze works (once).
func TestRingbufCommands(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.RingBuf, maps.UserRingBuf} {
		m := createMap(t, r, maps.Spec{Name: "rb_" + typ.String(), Type: typ, MaxEntries: 4096})
		notSupp := func(what string, err error) {
			t.Helper()
			wantErr(t, typ.String()+" "+what, err, maps.ErrNotSupported, errno.ENOTSUPP)
		}
		notSupp("lookup", m.Lookup(nil, nil, 0))
		notSupp("update", m.Update(nil, nil, maps.UpdateAny))
		notSupp("update flags 8", m.Update(nil, nil, 8))
		notSupp("delete", m.Delete(nil))
		notSupp("get next key", m.NextKey(nil, nil))
		notSupp("lookup and delete", m.LookupAndDelete(nil, nil, 0))
		k := []byte{0, 0, 0, 0}
		wantErr(t, "lookup with a key", m.Lookup(k, nil, 0), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, "update with a key", m.Update(k, nil, 0), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, "delete with a key", m.Delete(k), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, "lookup BPF_F_LOCK", m.Lookup(nil, nil, maps.FlagLock), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, "lookup flags 1", m.Lookup(nil, nil, 1), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, "update BPF_F_LOCK", m.Update(nil, nil, maps.FlagLock), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, "lookup and delete flags 1", m.LookupAndDelete(nil, nil, 1), maps.ErrInvalid, syscall.EINVAL)
		_, err := m.LookupBatch(nil, make([]byte, 4), nil, nil, 0, 0)
		notSupp("lookup batch", err)
		_, err = m.UpdateBatch(nil, nil, 0, 0)
		notSupp("update batch", err)
		_, err = m.DeleteBatch(nil, 0)
		notSupp("delete batch", err)
		if _, err := m.RingMemory(false); err != nil {
			t.Errorf("ring memory: %v", err)
		}
		noErr(t, "freeze", m.Freeze())
		wantErr(t, "second freeze", m.Freeze(), maps.ErrPermission, syscall.EPERM)
		_, err = m.RingMemory(true)
		wantErr(t, "writable ring memory of a frozen ring", err, maps.ErrPermission, syscall.EPERM)
		notSupp("lookup after freeze", m.Lookup(nil, nil, 0))
		wantErr(t, "update after freeze", m.Update(nil, nil, 0), maps.ErrPermission, syscall.EPERM)
	}
	h := createMap(t, r, maps.Spec{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	_, err := h.RingMemory(false)
	wantErr(t, "ring memory of a hash", err, maps.ErrInvalid, syscall.EINVAL)
}

// A ring created here is opened by name in another process, which sees the
// same geometry and the same memory (the positions this process wrote).
func TestRingbufOpenInChild(t *testing.T) {
	r, path := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "events", Type: maps.RingBuf, MaxEntries: 1 << 16})
	mem, err := m.RingMemory(true)
	noErr(t, "ring memory", err)
	mem.Producer().ProdPos.Store(4096)
	mem.Consumer().ConsPos.Store(1024)
	c := startChild(t, "ringbuf-open", path)
	c.Expect(t, "events ringbuf 65536 1024 4096")
	c.Wait(t)
}

var _ = proctest.Register("ringbuf-open", func(args []string) error {
	r, m, err := openChild(args[0], "events", 0)
	if err != nil {
		return err
	}
	defer r.Close()
	mem, err := m.RingMemory(false)
	if err != nil {
		return err
	}
	fmt.Println(m.Name(), m.Type(), mem.Size, mem.Consumer().ConsPos.Load(), mem.Producer().ProdPos.Load())
	return nil
})

// kernelRingCreate creates a ring buffer with bpf(2) and returns the errno
// (0: created, and closed again).
func kernelRingCreate(typ maps.Type, key, value, entries, flags uint32) syscall.Errno {
	attr := struct {
		MapType, KeySize, ValueSize, MaxEntries, MapFlags uint32
		_                                                 [108]byte
	}{MapType: uint32(typ), KeySize: key, ValueSize: value, MaxEntries: entries, MapFlags: flags}
	fd, _, e := syscall.Syscall(unix.SYS_BPF, 0, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if e == 0 {
		syscall.Close(int(fd))
	}
	return e
}

// The creation table above is what the running kernel answers: each case
// is tried with bpf(2) and must give the same errno. Skipped where bpf(2)
// is not available.
func TestRingbufCreateMatchesKernel(t *testing.T) {
	if e := kernelRingCreate(maps.RingBuf, 0, 0, 4096, 0); e != 0 {
		t.Skipf("bpf(2) cannot create a ring buffer here: %v", e)
	}
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.RingBuf, maps.UserRingBuf} {
		for i, c := range ringCreateCases {
			kerr := kernelRingCreate(typ, c.key, c.value, c.entries, c.flags)
			_, err := r.CreateMap(maps.Spec{Name: fmt.Sprintf("k%s_%d", typ, i), Type: typ, KeySize: c.key, ValueSize: c.value, MaxEntries: c.entries, Flags: c.flags})
			var ours syscall.Errno
			if err != nil && !errors.As(err, &ours) {
				for _, e := range []syscall.Errno{syscall.EINVAL, syscall.E2BIG, syscall.EPERM, syscall.ENOMEM} {
					if errors.Is(err, e) {
						ours = e
					}
				}
			}
			if ours != kerr {
				t.Errorf("%s key %d value %d entries %d flags %#x: kernel errno %d (%v), ours %d (%v)",
					typ, c.key, c.value, c.entries, c.flags, int(kerr), kerr, int(ours), err)
			}
		}
	}
}
