package maps

import "unsafe"

// mapOps is one map type's implementation, the analogue of the kernel's
// struct bpf_map_ops. The generic layer (map.go) has already checked
// permissions, sizes, frozen state and the flags every type shares; an op
// checks only what is its own (flag values it refuses, index ranges,
// NOEXIST/EXIST semantics).
//
// Ops that take a key are called inside an RCU read-side section.
type mapOps interface {
	// allocCheck validates the spec's type-specific attributes
	// (map_alloc_check); it must not allocate.
	allocCheck(s *Spec, ncpu int) error
	// alloc fills the descriptor's type part and allocates storage.
	alloc(m *Map) error
	// free releases the storage alloc made.
	free(m *Map)
	// lookupElem returns the storage of key's value (for per-CPU maps, CPU
	// 0's copy, the others following at the value stride), or nil.
	lookupElem(m *Map, key []byte) unsafe.Pointer
	// update writes a syscall-layout value (update_elem).
	update(m *Map, key, value []byte, flags uint64) error
	// delete removes key (delete_elem).
	delete(m *Map, key []byte) error
	// nextKey writes the key after key (nil: the first) into next.
	nextKey(m *Map, key, next []byte) error
}

// lookupAndDeleter is implemented by the types that support
// BPF_MAP_LOOKUP_AND_DELETE_ELEM; the others return ENOTSUPP.
type lookupAndDeleter interface {
	lookupAndDelete(m *Map, key, value []byte, flags uint64) error
}

// lookupCopier is implemented by types whose lookup cannot hand out a
// pointer to a stable value (a queue's peek, a bloom filter's membership
// test): Lookup then calls lookupCopy, which fills value itself (or, for a
// bloom filter, reads it) and returns the command's errno.
type lookupCopier interface {
	lookupCopy(m *Map, key, value []byte, flags uint64) error
}

// registry maps each implemented type to its ops: adding a type is one line.
var registry = map[Type]mapOps{
	Array:         arrayOps{},
	PerCPUArray:   arrayOps{perCPU: true},
	Hash:          &hashOps{},
	PerCPUHash:    &hashOps{perCPU: true},
	LRUHash:       &hashOps{lru: true},
	LRUPerCPUHash: &hashOps{lru: true, perCPU: true},
	ProgArray:     progArrayOps{},
	ArrayOfMaps:   &mapInMapOps{},
	HashOfMaps:    &mapInMapOps{hash: &hashOps{}},
	RingBuf:       ringbufOps{},
	UserRingBuf:   ringbufOps{user: true},
	LPMTrie:       lpmOps{},
	Queue:         queueOps{},
	Stack:         queueOps{stack: true},
	BloomFilter:   bloomOps{},
}
