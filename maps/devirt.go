package maps

import "unsafe"

// The hot commands call the ops through these functions instead of the
// mapOps interface. A call through an interface makes Go's escape analysis
// assume the key and value buffers escape, so every lookup through a
// caller's stack buffer (TypedMap does that) would allocate. The hash and
// array ops are called concretely, so their keys stay on the stack: 0
// allocations per operation. Other types go through the interface with a
// copy of the buffers (escapeCopy), which keeps the caller's buffers on
// its stack at the price of one allocation.

func (m *Map) opLookupElem(key []byte) unsafe.Pointer {
	switch o := m.ops.(type) {
	case *hashOps:
		return o.lookupElem(m, key)
	case arrayOps:
		return o.lookupElem(m, key)
	}
	return m.ops.lookupElem(m, escapeCopy(key))
}

func (m *Map) opUpdate(key, value []byte, flags uint64) error {
	switch o := m.ops.(type) {
	case *hashOps:
		return o.update(m, key, value, flags)
	case arrayOps:
		return o.update(m, key, value, flags)
	}
	return m.ops.update(m, escapeCopy(key), escapeCopy(value), flags)
}

func (m *Map) opDelete(key []byte) error {
	switch o := m.ops.(type) {
	case *hashOps:
		return o.delete(m, key)
	case arrayOps:
		return o.delete(m, key)
	}
	return m.ops.delete(m, escapeCopy(key))
}

// escapeCopy copies b to the heap (nil stays nil: key-less maps take none).
func escapeCopy(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
