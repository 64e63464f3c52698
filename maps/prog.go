package maps

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Program-side commands: what bpf_map_lookup_elem, bpf_map_update_elem
// and bpf_map_delete_elem do when a program calls them. The VM calls
// these inside the program's read-side section, on the virtual CPU the
// invocation leased; they differ from the user-space commands where the
// kernel's do:
//
//   - a lookup returns a pointer to the value in place (for per-CPU maps,
//     the running CPU's copy), valid until the section ends;
//   - an LRU lookup marks the element referenced, so it survives eviction
//     longer (user-space lookups do not);
//   - a per-CPU update from a program writes only the running CPU's copy
//     (a new key's other copies are zero).

// ProgLookup returns the address of key's value for a program running on
// virtual CPU cpu, or nil.
func (m *Map) ProgLookup(key []byte, cpu int) unsafe.Pointer {
	p := m.opLookupElem(key)
	if p == nil {
		return nil
	}
	if m.lru != nil {
		m.lru.markReferenced(m, p)
	}
	if m.typ.perCPU() {
		p = unsafe.Add(p, uintptr(cpu)*uintptr(m.stride))
	}
	return p
}

// ProgValueSize is the size of the value a program sees (one CPU's copy).
func (m *Map) ProgValueSize() uint32 { return m.valueSize }

// ProgUpdate is bpf_map_update_elem from a program on virtual CPU cpu;
// value is value_size bytes.
//
// readerSlot is the slot of the read-side section the program runs in
// (rcu.Reader.Slot), or -1 if unknown: an update that needs a spare element
// never waits for the program's own section.
func (m *Map) ProgUpdate(key, value []byte, flags uint64, cpu, readerSlot int) error {
	caller := unknownProgCaller
	if readerSlot >= 0 {
		caller = readerSlot
	}
	update := m.opUpdate
	if h, isHash := m.ops.(*hashOps); isHash {
		update = func(key, value []byte, flags uint64) error { return h.updateFor(m, key, value, flags, caller) }
	}
	if len(key) != int(m.keySize) || len(value) != int(m.valueSize) {
		return fmt.Errorf("%w: key or value of the wrong size", ErrInvalid)
	}
	if m.flags&FlagRdOnlyProg != 0 {
		return fmt.Errorf("%w: map is read-only to programs", ErrPermission)
	}
	if !m.typ.perCPU() {
		err := update(key, value, flags)
		if err == nil {
			m.emit(EventUpdate, key, value)
		}
		return err
	}
	if cpu < 0 || cpu >= m.ncpu {
		return fmt.Errorf("%w: CPU %d", ErrInvalid, cpu)
	}
	// Existing key: only this CPU's copy changes, in place.
	if flags != UpdateNoExist {
		if p := m.opLookupElem(key); p != nil {
			copy(storage(unsafe.Add(p, uintptr(cpu)*uintptr(m.stride)), m.valueSize), value)
			return nil
		}
		if _, isArray := m.ops.(arrayOps); isArray {
			return fmt.Errorf("%w: index past max_entries", ErrFull)
		}
	}
	all := make([]byte, m.UserValueSize())
	copy(all[cpu*int(m.stride):], value)
	return update(key, all, flags)
}

// ProgDelete is bpf_map_delete_elem from a program.
func (m *Map) ProgDelete(key []byte) error {
	if len(key) != int(m.keySize) {
		return fmt.Errorf("%w: key of the wrong size", ErrInvalid)
	}
	if m.flags&FlagRdOnlyProg != 0 {
		return fmt.Errorf("%w: map is read-only to programs", ErrPermission)
	}
	err := m.opDelete(key)
	if err == nil {
		m.emit(EventDelete, key, nil)
	}
	return err
}

// markReferenced gives the element whose value is at p the LRU age of a
// referenced element (writing only if needed, as the kernel's inlined
// lookup writes its ref bit only when clear, to keep the line clean).
func (h *hashOps) markReferenced(m *Map, p unsafe.Pointer) {
	off := uint64(uintptr(p)-uintptr(m.region.Pointer(0))) - uint64(m.hc.valueOff)
	t := h.cold(m, off)
	if atomic.LoadUint32(&t.Ref) < 2 {
		t.Ref = 2
	}
}

// ProgArrayLayout describes a plain ARRAY's values for lookups a program's
// VM inlines: the address of value 0 in this process, the distance
// between values, their number and size, and whether programs may write
// them. ok is false for every other map type (per-CPU arrays included),
// whose lookups stay helper calls.
func (m *Map) ProgArrayLayout() (first unsafe.Pointer, stride, n, valueSize uint32, readOnly, ok bool) {
	if m.typ != Array {
		return nil, 0, 0, 0, false, false
	}
	a, isArray := m.ops.(arrayOps)
	if !isArray || a.perCPU {
		return nil, 0, 0, 0, false, false
	}
	return a.slot(m, 0), m.stride, m.maxEntries, m.valueSize, m.flags&FlagRdOnlyProg != 0, true
}
