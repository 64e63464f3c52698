package maps

import "unsafe"

// The hot commands call the ops through these functions instead of the
// mapOps interface. A call through an interface makes Go's escape analysis
// assume the key and value buffers escape, so every lookup through a
// caller's stack buffer (TypedMap does that) would allocate. Switching to
// the concrete ops keeps them on the stack: 0 allocations per operation.
// The registry stays the one place that says which ops serve which type.

func (m *Map) opLookupElem(key []byte) unsafe.Pointer {
	switch o := m.ops.(type) {
	case *hashOps:
		return o.lookupElem(m, key)
	case arrayOps:
		return o.lookupElem(m, key)
	}
	panic("maps: no ops for " + m.typ.String())
}

func (m *Map) opUpdate(key, value []byte, flags uint64) error {
	switch o := m.ops.(type) {
	case *hashOps:
		return o.update(m, key, value, flags)
	case arrayOps:
		return o.update(m, key, value, flags)
	}
	panic("maps: no ops for " + m.typ.String())
}

func (m *Map) opDelete(key []byte) error {
	switch o := m.ops.(type) {
	case *hashOps:
		return o.delete(m, key)
	case arrayOps:
		return o.delete(m, key)
	}
	panic("maps: no ops for " + m.typ.String())
}
