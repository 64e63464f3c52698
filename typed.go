package userbpf

import (
	"fmt"
	"iter"
	"reflect"
	"unsafe"

	"github.com/userbpf/userbpf/maps"
)

// TypedMap is a typed view of a map whose keys and values are fixed-size Go
// types laid out as their C counterparts (integers, arrays, structs of
// those; no pointers, slices, strings or maps). Keys and values are passed
// by their memory image, so operations allocate nothing.
//
// Per-CPU maps are not supported by TypedMap; use the raw []byte API.
type TypedMap[K comparable, V any] struct {
	m *maps.Map
}

// NewTypedMap checks that K and V have the map's key and value sizes and
// contain no pointers, and returns the typed view.
func NewTypedMap[K comparable, V any](m *maps.Map) (*TypedMap[K, V], error) {
	var k K
	var v V
	switch {
	case m.Type() == maps.PerCPUArray || m.Type() == maps.PerCPUHash || m.Type() == maps.LRUPerCPUHash:
		return nil, fmt.Errorf("typed map %q: %w: per-CPU maps need the raw API", m.Name(), maps.ErrInvalid)
	case unsafe.Sizeof(k) != uintptr(m.KeySize()):
		return nil, fmt.Errorf("typed map %q: %w: key type %T is %d bytes, the map's keys are %d", m.Name(), maps.ErrInvalid, k, unsafe.Sizeof(k), m.KeySize())
	case unsafe.Sizeof(v) != uintptr(m.ValueSize()):
		return nil, fmt.Errorf("typed map %q: %w: value type %T is %d bytes, the map's values are %d", m.Name(), maps.ErrInvalid, v, unsafe.Sizeof(v), m.ValueSize())
	}
	for _, t := range []reflect.Type{reflect.TypeFor[K](), reflect.TypeFor[V]()} {
		if !plainData(t) {
			return nil, fmt.Errorf("typed map %q: %w: %v holds pointers or Go-managed data", m.Name(), maps.ErrInvalid, t)
		}
	}
	// A key is hashed and compared byte for byte: padding bytes (which Go
	// leaves undefined) would make equal keys differ.
	if kt := reflect.TypeFor[K](); padded(kt) {
		return nil, fmt.Errorf("typed map %q: %w: key type %v has padding or blank fields; spell the padding out as a named field", m.Name(), maps.ErrInvalid, kt)
	}
	return &TypedMap[K, V]{m: m}, nil
}

// plainData reports whether t is made only of fixed-size numbers.
func plainData(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return plainData(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !plainData(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// padded reports whether t has bytes no field covers, or blank fields.
func padded(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return padded(t.Elem())
	case reflect.Struct:
		end := uintptr(0)
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Offset != end || f.Name == "_" || padded(f.Type) {
				return true
			}
			end = f.Offset + f.Type.Size()
		}
		return end != t.Size()
	}
	return false
}

func bytesOf[T any](p *T) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p)) }

// Map is the underlying map.
func (t *TypedMap[K, V]) Map() *maps.Map { return t.m }

// Lookup returns k's value.
func (t *TypedMap[K, V]) Lookup(k K) (V, error) {
	var v V
	err := t.m.Lookup(bytesOf(&k), bytesOf(&v), 0)
	return v, err
}

// Update stores v under k with flags (maps.UpdateAny, UpdateNoExist,
// UpdateExist, optionally | maps.FlagLock).
func (t *TypedMap[K, V]) Update(k K, v V, flags uint64) error {
	return t.m.Update(bytesOf(&k), bytesOf(&v), flags)
}

// Delete removes k.
func (t *TypedMap[K, V]) Delete(k K) error { return t.m.Delete(bytesOf(&k)) }

// All iterates over the map's keys and values in get_next_key order. An
// element deleted while iterating is skipped; like the kernel's iteration,
// it is not a snapshot.
func (t *TypedMap[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		var k, next K
		var v V
		cur := []byte(nil)
		for t.m.NextKey(cur, bytesOf(&next)) == nil {
			k = next
			cur = bytesOf(&k)
			if t.m.Lookup(cur, bytesOf(&v), 0) != nil {
				continue
			}
			if !yield(k, v) {
				return
			}
		}
	}
}
