package maps

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/lock"
)

// queueOps implements QUEUE and STACK (kernel/bpf/queue_stack_maps.c).
// They are key-less: update pushes, lookup peeks, lookup-and-delete pops.
// A queue gives back its oldest element, a stack its newest.
//
// Storage is one region block (Data): a 16-byte header, then a circular
// array of max_entries+1 slots of value_size bytes. One slot is always
// free, so Head == Tail means empty and Head+1 == Tail (mod size) full,
// exactly as in the kernel:
//
//	0   Lock u32   lock.SpinLock word: every push, peek and pop holds it
//	4   (pad)
//	8   Pos u64    Head | Tail<<32: Head is the slot the next push fills,
//	               Tail the slot of the oldest element
//	16  Slots      (max_entries+1) × value_size bytes
//
// Crash safety: every command that changes the map commits with one 8-byte
// store of Pos, after the slot it publishes is written. A holder killed
// before that store leaves the map as it was (a push not done, a pop not
// done: the element stays for the next popper); killed after it, the
// command is complete and the lock is all that is left, which the next
// locker recovers. An overwriting push (BPF_EXIST on a full map) moves Head
// and Tail in that same store, so the oldest element disappears exactly
// when the new one appears. A locker that recovers the lock from a dead
// holder has nothing to repair; every locker checks that Pos is in range
// (a corrupt Pos empties the map instead of indexing outside it).
type queueOps struct{ stack bool }

// queueHeader is the head of a queue's block (see queueOps).
type queueHeader struct {
	Lock lock.SpinLock
	_    uint32
	Pos  atomic.Uint64
}

const queueHeaderSize = 16

// queueCreateFlags is QUEUE_STACK_CREATE_FLAG_MASK.
const queueCreateFlags = FlagNumaNode | flagAccessMask

func (q queueOps) allocCheck(s *Spec, ncpu int) error {
	switch {
	case s.MaxEntries == 0 || s.KeySize != 0 || s.ValueSize == 0 || s.Flags&^queueCreateFlags != 0 || !accessOK(s.Flags):
		return fmt.Errorf("%w: %s needs key 0, value > 0, entries > 0 and flags within NUMA_NODE and the access flags (got key %d value %d entries %d flags %#x)",
			ErrInvalid, s.Type, s.KeySize, s.ValueSize, s.MaxEntries, s.Flags)
	case s.ValueSize > kmallocMaxSize:
		return fmt.Errorf("%w: value size %d is above KMALLOC_MAX_SIZE", ErrFull, s.ValueSize)
	}
	return nil
}

// size is the number of slots: max_entries + 1.
func (q queueOps) size(m *Map) uint64 { return uint64(m.maxEntries) + 1 }

func (q queueOps) blockSize(m *Map) uint64 {
	return queueHeaderSize + q.size(m)*uint64(m.valueSize)
}

func (q queueOps) alloc(m *Map) error {
	off, err := m.region.Alloc(q.blockSize(m))
	if err != nil {
		return fmt.Errorf("%w: %d slots of %d bytes: %v", ErrNoMemory, q.size(m), m.valueSize, err)
	}
	m.d.Data = off
	return nil
}

func (q queueOps) free(m *Map) { m.region.Free(m.d.Data) }

func (q queueOps) validate(m *Map) error {
	if m.d.KeySize != 0 || m.d.ValueSize == 0 || m.d.MaxEntries == 0 {
		return fmt.Errorf("bad queue geometry")
	}
	_, err := m.region.Bytes(m.d.Data, q.blockSize(m))
	return err
}

func (q queueOps) header(m *Map) *queueHeader { return (*queueHeader)(m.region.Pointer(m.d.Data)) }

func (q queueOps) slot(m *Map, i uint32) []byte {
	return storage(m.region.Pointer(m.d.Data+queueHeaderSize+uint64(i)*uint64(m.valueSize)), m.valueSize)
}

// lock takes the map's lock and returns Head and Tail.
func (q queueOps) lock(m *Map) (h *queueHeader, head, tail uint32) {
	h = q.header(m)
	h.Lock.Lock(m.holder) // a dead holder left Pos consistent (see queueOps)
	pos := h.Pos.Load()
	head, tail = uint32(pos), uint32(pos>>32)
	if size := q.size(m); uint64(head) >= size || uint64(tail) >= size {
		h.Pos.Store(0)
		head, tail = 0, 0
	}
	return h, head, tail
}

// next is the slot after i.
func (q queueOps) next(m *Map, i uint32) uint32 {
	if uint64(i)+1 >= q.size(m) {
		return 0
	}
	return i + 1
}

// prev is the slot before i.
func (q queueOps) prev(m *Map, i uint32) uint32 {
	if i == 0 {
		return uint32(q.size(m) - 1)
	}
	return i - 1
}

func pack(head, tail uint32) uint64 { return uint64(head) | uint64(tail)<<32 }

func (q queueOps) lookupElem(m *Map, key []byte) unsafe.Pointer { return nil }

// update is push: BPF_ANY fails with E2BIG on a full map, BPF_EXIST drops
// the oldest element to make room, BPF_NOEXIST is EINVAL.
func (q queueOps) update(m *Map, key, value []byte, flags uint64) error {
	if flags&UpdateNoExist != 0 || flags > UpdateExist {
		return fmt.Errorf("%w: push flags %#x (BPF_ANY or BPF_EXIST)", ErrInvalid, flags)
	}
	h, head, tail := q.lock(m)
	defer h.Lock.Unlock()
	next := q.next(m, head)
	full := next == tail
	if full && flags != UpdateExist {
		return fmt.Errorf("%w: %s holds max_entries (%d) elements", ErrFull, m.typ, m.maxEntries)
	}
	copy(q.slot(m, head), value) // the free slot: nobody reads it
	if full {
		tail = q.next(m, tail) // the oldest element goes in the same store
	}
	h.Pos.Store(pack(next, tail))
	return nil
}

// get copies the element a pop would take into value, and takes it if
// del. An empty map is ENOENT and value is left alone (the kernel zeroes
// its own buffer, which it then does not copy out).
func (q queueOps) get(m *Map, value []byte, del bool) error {
	h, head, tail := q.lock(m)
	defer h.Lock.Unlock()
	if head == tail {
		return fmt.Errorf("%w: %s is empty", ErrKeyNotExist, m.typ)
	}
	if q.stack {
		top := q.prev(m, head)
		copy(value, q.slot(m, top))
		if del {
			h.Pos.Store(pack(top, tail))
		}
		return nil
	}
	copy(value, q.slot(m, tail))
	if del {
		h.Pos.Store(pack(head, q.next(m, tail)))
	}
	return nil
}

// lookupCopy is peek.
func (q queueOps) lookupCopy(m *Map, key, value []byte, flags uint64) error {
	return q.get(m, value, false)
}

// lookupAndDelete is pop. The generic layer has refused every flag (the
// kernel: any flag on a queue or stack is EINVAL).
func (q queueOps) lookupAndDelete(m *Map, key, value []byte, flags uint64) error {
	if flags != 0 {
		return fmt.Errorf("%w: pop flags %#x", ErrInvalid, flags)
	}
	return q.get(m, value, true)
}

func (q queueOps) delete(m *Map, key []byte) error {
	return fmt.Errorf("%w: %s elements cannot be deleted (pop them)", ErrInvalid, m.typ)
}

func (q queueOps) nextKey(m *Map, key, next []byte) error {
	return fmt.Errorf("%w: %s has no keys to iterate", ErrInvalid, m.typ)
}

func (q queueOps) hasBatch(batchCmd) bool { return false }

// contents copies every element, in the order pops would return them.
func (q queueOps) contents(m *Map) [][]byte {
	h, head, tail := q.lock(m)
	defer h.Lock.Unlock()
	var out [][]byte
	if q.stack {
		for i := head; i != tail; {
			i = q.prev(m, i)
			out = append(out, append([]byte(nil), q.slot(m, i)...))
		}
		return out
	}
	for i := tail; i != head; i = q.next(m, i) {
		out = append(out, append([]byte(nil), q.slot(m, i)...))
	}
	return out
}
