package maps

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// progArrayOps implements PROG_ARRAY, the table bpf_tail_call jumps
// through. User space sees 4-byte values: an update takes a program's ID
// (where the kernel takes its fd) and a lookup returns it; 0 is an empty
// slot. Slots are array slots (8-byte stride) holding the ID, stored and
// loaded atomically. As an fd array: updates take BPF_ANY only, delete
// empties a slot.
type progArrayOps struct{}

// ProgramExists is set by package programs: it reports whether a program
// with the given ID exists in the region (the kernel's fd check). Until it
// is set, every ID is refused.
var ProgramExists func(m *Map, id uint32) bool

func (progArrayOps) allocCheck(s *Spec, ncpu int) error {
	if s.ValueSize != 4 {
		return fmt.Errorf("%w: PROG_ARRAY values are 4-byte program IDs (value size %d)", ErrInvalid, s.ValueSize)
	}
	if s.Flags&(FlagRdOnlyProg|FlagWrOnlyProg) != 0 {
		return fmt.Errorf("%w: BPF_F_RDONLY_PROG/WRONLY_PROG on a PROG_ARRAY", ErrInvalid)
	}
	return arrayOps{}.allocCheck(s, ncpu)
}

func (progArrayOps) alloc(m *Map) error       { return arrayOps{}.alloc(m) }
func (progArrayOps) free(m *Map)              { arrayOps{}.free(m) }
func (progArrayOps) validate(m *Map) error    { return arrayOps{}.validate(m) }
func (progArrayOps) hasBatch(c batchCmd) bool { return c == batchLookup }

func (progArrayOps) slot(m *Map, key []byte) *atomic.Uint32 {
	p := arrayOps{}.lookupElem(m, key)
	return (*atomic.Uint32)(p)
}

func (o progArrayOps) lookupElem(m *Map, key []byte) unsafe.Pointer {
	return unsafe.Pointer(o.slot(m, key))
}

func (o progArrayOps) lookupCopy(m *Map, key, value []byte, flags uint64) error {
	if flags != 0 {
		return fmt.Errorf("%w: lookup flags %#x on a PROG_ARRAY", ErrInvalid, flags)
	}
	w := o.slot(m, key)
	if w == nil || w.Load() == 0 {
		return ErrKeyNotExist
	}
	binary.NativeEndian.PutUint32(value, w.Load())
	return nil
}

func (o progArrayOps) update(m *Map, key, value []byte, flags uint64) error {
	if flags != UpdateAny {
		return fmt.Errorf("%w: update flags %#x on a PROG_ARRAY (only BPF_ANY)", ErrInvalid, flags)
	}
	i := binary.NativeEndian.Uint32(key)
	if i >= m.maxEntries {
		return fmt.Errorf("%w: index %d is past max_entries %d", ErrFull, i, m.maxEntries)
	}
	id := binary.NativeEndian.Uint32(value)
	if id == 0 || ProgramExists == nil || !ProgramExists(m, id) {
		return fmt.Errorf("%w: no program with ID %d in region %s", ErrBadMap, id, m.region.Path())
	}
	o.slot(m, key).Store(id)
	return nil
}

func (o progArrayOps) delete(m *Map, key []byte) error {
	i := binary.NativeEndian.Uint32(key)
	if i >= m.maxEntries {
		return fmt.Errorf("%w: index %d is past max_entries %d", ErrFull, i, m.maxEntries)
	}
	if o.slot(m, key).Swap(0) == 0 {
		return ErrKeyNotExist
	}
	return nil
}

func (progArrayOps) nextKey(m *Map, key, next []byte) error { return arrayOps{}.nextKey(m, key, next) }

// TailCallTarget is what bpf_tail_call reads: the program ID in slot index,
// or 0 if the index is past the end or the slot empty.
func (m *Map) TailCallTarget(index uint32) uint32 {
	if _, ok := m.ops.(progArrayOps); !ok || index >= m.maxEntries {
		return 0
	}
	return (*atomic.Uint32)(arrayOps{}.slot(m, index)).Load()
}
