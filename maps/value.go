package maps

import "unsafe"

// storage returns n bytes of region memory at p as a slice.
func storage(p unsafe.Pointer, n uint32) []byte { return unsafe.Slice((*byte)(p), n) }

// copyOut copies one stored value into dst (value_size bytes), with the
// lock word read back as zero, as the kernel's lookup does for special
// fields.
func (m *Map) copyOut(dst []byte, p unsafe.Pointer) {
	copy(dst, storage(p, m.valueSize))
	if m.g.table != nil {
		for _, s := range m.g.skip {
			clear(dst[s[0]:s[1]])
		}
		return
	}
	if m.lockOff != noLock {
		clear(dst[m.lockOff : m.lockOff+4])
	}
}

// copyIn copies src (value_size bytes) into the stored value at p without
// touching its lock word or containers (copy_map_value).
func (m *Map) copyIn(p unsafe.Pointer, src []byte) {
	v := storage(p, m.valueSize)
	if m.g.table != nil {
		m.copySkipping(v, src)
		return
	}
	if m.lockOff == noLock {
		copy(v, src)
		return
	}
	copy(v[:m.lockOff], src[:m.lockOff])
	copy(v[m.lockOff+4:], src[m.lockOff+4:])
}

// copyOutPerCPU copies every CPU's copy, stride bytes each, into dst.
func (m *Map) copyOutPerCPU(dst []byte, p unsafe.Pointer) {
	copy(dst, storage(p, uint32(m.ncpu)*m.stride))
}

// copyInPerCPU stores every CPU's copy from src, padding included: the
// kernel (6.18) copies the rounded size for per-CPU arrays and hashes alike,
// so the padding bytes round-trip.
func (m *Map) copyInPerCPU(p unsafe.Pointer, src []byte) {
	copy(storage(p, uint32(m.ncpu)*m.stride), src)
}

// storedCopier is implemented by types whose stored value is not what
// user space sees (a map-in-map stores a descriptor offset and shows the
// inner map's ID).
type storedCopier interface {
	copyStoredOut(m *Map, dst []byte, p unsafe.Pointer)
}

// copyOutAny copies a stored value in the syscall layout, under the value
// lock when flags has FlagLock.
func (m *Map) copyOutAny(dst []byte, p unsafe.Pointer, flags uint64) {
	switch {
	case m.typ.perCPU():
		m.copyOutPerCPU(dst, p)
	case flags&FlagLock != 0:
		l := m.valueLock(p)
		l.Lock(m.holder)
		m.copyOut(dst, p)
		l.Unlock()
	default:
		m.copyOut(dst, p)
	}
}
