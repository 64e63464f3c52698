package maps

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/userbpf/userbpf/shm"
)

// arrayOps implements ARRAY and PERCPU_ARRAY (kernel/bpf/arraymap.c).
//
// Values are one block of max_entries slots, each round_up(value_size, 8)
// bytes (× ncpu for per-CPU arrays, CPU c of index i at (i×ncpu + c) ×
// stride). With BPF_F_MMAPABLE the block is page-aligned. Every slot exists
// from creation, zero-filled; updates are in place.
type arrayOps struct{ perCPU bool }

// arrayCreateFlags is ARRAY_CREATE_FLAG_MASK.
const arrayCreateFlags = FlagNumaNode | FlagMmapable | flagAccessMask | FlagPreserveElems | FlagInnerMap

func (a arrayOps) allocCheck(s *Spec, ncpu int) error {
	switch {
	case s.MaxEntries == 0 || s.KeySize != 4 || s.ValueSize == 0 || s.Flags&^arrayCreateFlags != 0 || !accessOK(s.Flags) || a.perCPU && s.Flags&FlagNumaNode != 0:
		return fmt.Errorf("%w: %s needs key 4, value > 0, entries > 0 and its own flags (got key %d value %d entries %d flags %#x)",
			ErrInvalid, s.Type, s.KeySize, s.ValueSize, s.MaxEntries, s.Flags)
	case s.Type != Array && s.Flags&(FlagMmapable|FlagInnerMap) != 0:
		return fmt.Errorf("%w: BPF_F_MMAPABLE and BPF_F_INNER_MAP are for ARRAY only", ErrInvalid)
	case s.Flags&FlagPreserveElems != 0:
		return fmt.Errorf("%w: BPF_F_PRESERVE_ELEMS is for PERF_EVENT_ARRAY only", ErrInvalid)
	case s.ValueSize > intMax:
		return fmt.Errorf("%w: value size %d", ErrFull, s.ValueSize)
	case a.perCPU && roundUp8(s.ValueSize) > pcpuMinUnitSize:
		return fmt.Errorf("%w: per-CPU value size %d is above %d", ErrFull, s.ValueSize, pcpuMinUnitSize)
	}
	return nil
}

func (a arrayOps) slots(m *Map) uint64 {
	n := uint64(m.maxEntries)
	if a.perCPU {
		n *= uint64(m.ncpu)
	}
	return n
}

func (a arrayOps) alloc(m *Map) error {
	size := a.slots(m) * uint64(m.stride)
	if m.flags&FlagMmapable != 0 {
		size = max((size+4095)&^4095, shm.MaxClassSize+1) // a run: page (and span) aligned
	}
	off, err := m.region.Alloc(size)
	if err != nil {
		return fmt.Errorf("%w: %d bytes of values: %v", ErrNoMemory, size, err)
	}
	m.d.ElemSize = m.stride
	m.d.Data = off
	return nil
}

func (a arrayOps) free(m *Map) { m.region.Free(m.d.Data) }

func (a arrayOps) validate(m *Map) error {
	if m.d.KeySize != 4 || m.d.ElemSize != roundUp8(m.d.ValueSize) || m.d.MaxEntries == 0 {
		return fmt.Errorf("bad array geometry")
	}
	n := uint64(m.d.MaxEntries) * uint64(m.d.ElemSize)
	if a.perCPU {
		n *= uint64(m.d.NCPU)
	}
	_, err := m.region.Bytes(m.d.Data, n)
	return err
}

func (a arrayOps) slot(m *Map, index uint32) unsafe.Pointer {
	i := uint64(index)
	if a.perCPU {
		i *= uint64(m.ncpu)
	}
	return m.region.Pointer(m.d.Data + i*uint64(m.stride))
}

func (a arrayOps) lookupElem(m *Map, key []byte) unsafe.Pointer {
	i := binary.NativeEndian.Uint32(key)
	if i >= m.maxEntries {
		return nil
	}
	return a.slot(m, i)
}

func (a arrayOps) update(m *Map, key, value []byte, flags uint64) error {
	if a.perCPU && flags > UpdateExist || !a.perCPU && flags&^FlagLock > UpdateExist {
		return fmt.Errorf("%w: update flags %#x", ErrInvalid, flags)
	}
	i := binary.NativeEndian.Uint32(key)
	if i >= m.maxEntries {
		return fmt.Errorf("%w: index %d is past max_entries %d", ErrFull, i, m.maxEntries)
	}
	if flags&^FlagLock == UpdateNoExist {
		return fmt.Errorf("%w: every array index exists", ErrKeyExist)
	}
	p := a.slot(m, i)
	switch {
	case a.perCPU:
		m.copyInPerCPU(p, value)
	case flags&FlagLock != 0:
		l := m.valueLock(p)
		l.Lock(m.holder)
		m.copyIn(p, value)
		l.Unlock()
	default:
		m.copyIn(p, value)
	}
	// An overwritten value loses its containers' contents, as in the
	// kernel (bpf_obj_free_fields after the copy).
	m.drainValue(p)
	return nil
}

func (a arrayOps) delete(m *Map, key []byte) error {
	return fmt.Errorf("%w: array elements cannot be deleted (write zeros instead)", ErrInvalid)
}

func (a arrayOps) nextKey(m *Map, key, next []byte) error {
	i := uint32(0)
	if key != nil {
		if k := binary.NativeEndian.Uint32(key); k < m.maxEntries {
			if k == m.maxEntries-1 {
				return ErrKeyNotExist
			}
			i = k + 1
		}
	}
	binary.NativeEndian.PutUint32(next, i)
	return nil
}

// ValuePointer returns a stable pointer to an array slot's value (CPU 0's
// copy for per-CPU arrays) for zero-copy use and atomics. Array slots never
// move or disappear, so the pointer is valid while the region is attached.
func (m *Map) ValuePointer(index uint32) (unsafe.Pointer, error) {
	a, ok := m.ops.(arrayOps)
	if !ok {
		return nil, m.errorf("value pointer", fmt.Errorf("%w: only array slots have stable addresses; use View", ErrInvalid))
	}
	if index >= m.maxEntries {
		return nil, m.errorf("value pointer", ErrKeyNotExist)
	}
	return a.slot(m, index), nil
}
