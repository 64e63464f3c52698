package maps_test

// Handle access modes (BPF_F_RDONLY / BPF_F_WRONLY) and freezing.

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

// command is one map command, run on a handle, for the access tables.
type command struct {
	name  string
	write bool // needs a writable handle on an unfrozen map
	read  bool // needs a readable handle
	run   func(m *maps.Map) error
}

// commands are every command a handle offers, on a map whose key 1 exists
// (4-byte keys, 16-byte values). Hash-only and lock-only commands are
// marked by the tests that skip them.
func commands(hash bool) []command {
	k := key32(1)
	v := func() []byte { return make([]byte, 16) }
	cursor := func() []byte { return make([]byte, 4) }
	cs := []command{
		{"lookup", false, true, func(m *maps.Map) error { return m.Lookup(k, v(), 0) }},
		{"get next key", false, true, func(m *maps.Map) error { return m.NextKey(nil, make([]byte, 4)) }},
		{"view", false, true, func(m *maps.Map) error { return m.View(k, func([]byte) {}) }},
		{"lookup batch", false, true, func(m *maps.Map) error {
			_, err := m.LookupBatch(nil, cursor(), make([]byte, 4*16), make([]byte, 16*16), 0, 0)
			return ignoreENOENT(err)
		}},
		{"update", true, false, func(m *maps.Map) error { return m.Update(k, v(), maps.UpdateAny) }},
		{"update batch", true, false, func(m *maps.Map) error { _, err := m.UpdateBatch(k, v(), 0, 0); return err }},
		{"atomic", true, false, func(m *maps.Map) error {
			_, err := m.Atomic(k, 8, 8, maps.AtomicAdd, 1, 0)
			return err
		}},
	}
	if hash {
		cs = append(cs,
			command{"lookup and delete", true, true, func(m *maps.Map) error {
				if err := m.LookupAndDelete(k, v(), 0); err != nil {
					return err
				}
				return m.Update(k, v(), maps.UpdateAny) // put it back for the next command
			}},
			command{"lookup and delete batch", true, true, func(m *maps.Map) error {
				_, err := m.LookupAndDeleteBatch(nil, cursor(), make([]byte, 4*16), make([]byte, 16*16), 0, 0)
				if err := ignoreENOENT(err); err != nil {
					return err
				}
				return m.Update(k, v(), maps.UpdateAny)
			}},
			command{"delete", true, false, func(m *maps.Map) error {
				if err := m.Delete(k); err != nil {
					return err
				}
				return m.Update(k, v(), maps.UpdateAny)
			}},
			command{"delete batch", true, false, func(m *maps.Map) error {
				if _, err := m.DeleteBatch(k, 0); err != nil {
					return err
				}
				return m.Update(k, v(), maps.UpdateAny)
			}},
		)
	}
	return cs
}

// ignoreENOENT drops the end-of-map error of a batch loop's last call.
func ignoreENOENT(err error) error {
	if err != nil && errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

func TestAccessModes(t *testing.T) {
	for _, typ := range []maps.Type{maps.Hash, maps.LRUHash, maps.Array} {
		t.Run(typ.String(), func(t *testing.T) {
			r, _ := newRegion(t)
			rw := createMap(t, r, maps.Spec{Name: "acc", Type: typ, KeySize: 4, ValueSize: 16, MaxEntries: 4})
			noErr(t, "update", rw.Update(key32(1), make([]byte, 16), maps.UpdateAny))
			ro, err := r.OpenMap("acc", maps.FlagRdOnly)
			noErr(t, "open read-only", err)
			wo, err := r.OpenMap("acc", maps.FlagWrOnly)
			noErr(t, "open write-only", err)
			for _, c := range commands(typ != maps.Array) {
				for _, h := range []struct {
					mode string
					m    *maps.Map
					ok   bool
				}{
					{"read-write", rw, true},
					{"read-only", ro, !c.write},
					{"write-only", wo, !c.read},
				} {
					err := c.run(h.m)
					if h.ok && err != nil {
						t.Errorf("%s through a %s handle: %v", c.name, h.mode, err)
					}
					if !h.ok {
						wantErr(t, c.name+" through a "+h.mode+" handle", err, maps.ErrPermission, syscall.EPERM)
					}
				}
			}
			if err := ro.Freeze(); err == nil {
				t.Errorf("freeze through a read-only handle succeeded")
			} else {
				wantErr(t, "freeze through a read-only handle", err, maps.ErrPermission, syscall.EPERM)
			}
		})
	}
}

func TestOpenFlags(t *testing.T) {
	r, _ := newRegion(t)
	createMap(t, r, maps.Spec{Name: "of", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	for _, f := range []uint32{maps.FlagRdOnly | maps.FlagWrOnly, maps.FlagNoPrealloc, maps.FlagRdOnlyProg, 1 << 31} {
		_, err := r.OpenMap("of", f)
		wantErr(t, fmt.Sprintf("open with flags %#x", f), err, maps.ErrInvalid, syscall.EINVAL)
	}
	// A map created with BPF_F_RDONLY gives a read-only first handle; the
	// map itself stays writable through other handles.
	ro := createMap(t, r, maps.Spec{Name: "cro", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: maps.FlagRdOnly})
	wantErr(t, "update through the read-only creating handle", ro.Update(key32(1), make([]byte, 8), 0), maps.ErrPermission, syscall.EPERM)
	if ro.Flags()&(maps.FlagRdOnly|maps.FlagWrOnly) != 0 {
		t.Errorf("Flags() = %#x keeps the handle mode", ro.Flags())
	}
	rw, err := r.OpenMap("cro", 0)
	noErr(t, "open", err)
	noErr(t, "update through a second handle", rw.Update(key32(1), make([]byte, 8), 0))
	noErr(t, "lookup through the read-only handle", ro.Lookup(key32(1), make([]byte, 8), 0))
}

// frozen: path name — print whether the map is frozen and what an update
// from this process returns.
var _ = proctest.Register("frozen", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	err = m.Update(key32(1), make([]byte, 16), maps.UpdateAny)
	proctest.Ready(strconv.FormatBool(m.Frozen()) + " " + strconv.FormatBool(errors.Is(err, syscall.EPERM)))
	return nil
})

func TestFreeze(t *testing.T) {
	for _, typ := range []maps.Type{maps.Hash, maps.Array} {
		t.Run(typ.String(), func(t *testing.T) {
			r, path := newRegion(t)
			m := createMap(t, r, maps.Spec{Name: "fz", Type: typ, KeySize: 4, ValueSize: 16, MaxEntries: 4})
			other, err := r.OpenMap("fz", 0)
			noErr(t, "open", err)
			wo, err := r.OpenMap("fz", maps.FlagWrOnly)
			noErr(t, "open write-only", err)
			noErr(t, "update", m.Update(key32(1), make([]byte, 16), maps.UpdateAny))
			if m.Frozen() {
				t.Fatal("Frozen() before Freeze")
			}
			noErr(t, "freeze through a write-only handle", wo.Freeze())
			if !m.Frozen() || !other.Frozen() {
				t.Errorf("Frozen() = %v, %v on the other handles after Freeze", m.Frozen(), other.Frozen())
			}
			for _, c := range commands(typ != maps.Array) {
				err := c.run(other)
				switch {
				case c.write:
					wantErr(t, c.name+" on a frozen map", err, maps.ErrPermission, syscall.EPERM)
				case err != nil:
					t.Errorf("%s on a frozen map: %v", c.name, err)
				}
			}
			// The kernel (6.18, probed) checks write permission before
			// "already frozen", and a frozen map has none: EPERM.
			wantErr(t, "second freeze", m.Freeze(), maps.ErrPermission, syscall.EPERM)
			c := startChild(t, "frozen", path, "fz")
			c.Expect(t, "true true")
			c.Wait(t)
		})
	}
	t.Run("lock", func(t *testing.T) {
		r, _ := newRegion(t)
		m := createMap(t, r, maps.Spec{Name: "fl", Type: maps.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 4,
			HasLock: true, LockOffset: 4})
		wantErr(t, "freeze of a map whose value has a bpf_spin_lock", m.Freeze(), maps.ErrNotSupported, syscall.Errno(524))
		if m.Frozen() {
			t.Errorf("a refused freeze froze the map")
		}
		noErr(t, "update after a refused freeze", m.Update(key32(1), make([]byte, 16), maps.UpdateAny))
	})
}

// TestWithLockAccess: WithLock writes, so a read-only handle or a frozen
// map refuses it (a map with a lock cannot be frozen, so only the handle
// case exists).
func TestWithLockAccess(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, lockedSpec("wla", maps.Hash, 16))
	noErr(t, "update", m.Update(key32(1), make([]byte, 16), maps.UpdateAny))
	ro, err := r.OpenMap("wla", maps.FlagRdOnly)
	noErr(t, "open read-only", err)
	wantErr(t, "WithLock through a read-only handle", ro.WithLock(key32(1), func([]byte) error { return nil }),
		maps.ErrPermission, syscall.EPERM)
	noErr(t, "FlagLock lookup through a read-only handle", ro.Lookup(key32(1), make([]byte, 16), maps.FlagLock))
}
