package maps

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// AtomicOp is an atomic read-modify-write on a word of a value, the same
// operations programs perform with BPF_ATOMIC instructions (which the VM
// executes as real atomics on region memory, so both agree).
type AtomicOp int

// Atomic operations.
const (
	AtomicAdd     AtomicOp = iota // *p += operand
	AtomicAnd                     // *p &= operand
	AtomicOr                      // *p |= operand
	AtomicXor                     // *p ^= operand
	AtomicXchg                    // *p = operand
	AtomicCmpXchg                 // if *p == compare { *p = operand }
)

// Atomic applies op to the size-byte word (4 or 8, naturally aligned) at
// byte off of key's value, in place, and returns the word's previous value.
// For per-CPU maps off indexes the ncpu × round_up(value_size, 8) layout, so
// any CPU's copy can be addressed. The lock word cannot be touched.
func (m *Map) Atomic(key []byte, off uint32, size int, op AtomicOp, operand, compare uint64) (old uint64, err error) {
	limit := uint64(m.valueSize)
	if m.typ.perCPU() {
		limit = uint64(m.ncpu) * uint64(m.stride)
	}
	switch {
	case size != 4 && size != 8:
		err = fmt.Errorf("%w: atomic on %d bytes (want 4 or 8)", ErrInvalid, size)
	case off%uint32(size) != 0 || uint64(off)+uint64(size) > limit:
		err = fmt.Errorf("%w: %d-byte word at %d is not aligned inside the %d-byte value", ErrInvalid, size, off, limit)
	case m.lockOff != noLock && off < m.lockOff+4 && off+uint32(size) > m.lockOff:
		err = fmt.Errorf("%w: the word overlaps the bpf_spin_lock", ErrInvalid)
	case op < AtomicAdd || op > AtomicCmpXchg:
		err = fmt.Errorf("%w: atomic op %d", ErrInvalid, op)
	}
	if err == nil {
		err = m.writable()
	}
	if err == nil {
		err = m.checkKey(key)
	}
	if err != nil {
		return 0, m.errorf("atomic", err)
	}
	found := false
	rerr := m.rcu.ReadPinned(func() {
		p := m.opLookupElem(key)
		if p == nil {
			return
		}
		found = true
		if size == 4 {
			old = uint64(atomic32((*atomic.Uint32)(unsafe.Add(p, off)), op, uint32(operand), uint32(compare)))
		} else {
			old = atomic64((*atomic.Uint64)(unsafe.Add(p, off)), op, operand, compare)
		}
	})
	if rerr != nil {
		return 0, m.errorf("atomic", rerr)
	}
	if !found {
		return 0, m.errorf("atomic", ErrKeyNotExist)
	}
	return old, nil
}

// atomicWord is sync/atomic's Uint32 or Uint64.
type atomicWord[T uint32 | uint64] interface {
	Load() T
	Add(T) T
	And(T) T
	Or(T) T
	Swap(T) T
	CompareAndSwap(old, new T) bool
}

func atomic32(w *atomic.Uint32, op AtomicOp, v, cmp uint32) uint32 { return applyAtomic(w, op, v, cmp) }

func atomic64(w *atomic.Uint64, op AtomicOp, v, cmp uint64) uint64 { return applyAtomic(w, op, v, cmp) }

// applyAtomic performs op on w and returns w's previous value.
func applyAtomic[T uint32 | uint64, W atomicWord[T]](w W, op AtomicOp, v, cmp T) T {
	switch op {
	case AtomicAdd:
		return w.Add(v) - v
	case AtomicAnd:
		return w.And(v)
	case AtomicOr:
		return w.Or(v)
	case AtomicXchg:
		return w.Swap(v)
	}
	for {
		o := w.Load()
		switch {
		case op == AtomicXor && w.CompareAndSwap(o, o^v):
			return o
		case op == AtomicCmpXchg && (o != cmp || w.CompareAndSwap(o, v)):
			return o
		}
	}
}
