package vm

import "unsafe"

// memRange is memory a program may touch besides its stack and ctx.
type memRange struct {
	lo, n uint64
	w     bool
}

// maxRanges bounds the ranges helpers may add in one run; beyond it the
// older half is forgotten (a program that looks up more values than this
// in one run can no longer touch the first ones).
const maxRanges = 1024

// ptr turns a checked address into a pointer. Addresses are either in the
// Go heap (stack frames, ctx), kept alive by the Machine and the caller,
// or in memory the host mapped.
func ptr(a uint64) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

// AllowRange lets the rest of the current run touch [addr, addr+size):
// for helpers that hand the program memory (a map value, a ring-buffer
// record). Read-only unless writable. The memory must stay valid until the
// run ends or RevokeRange; the host keeps it alive.
func (m *Machine) AllowRange(addr uintptr, size uintptr, writable bool) {
	if size == 0 {
		return
	}
	a := uint64(addr)
	// The same value is often handed out again (a lookup in a loop): look
	// for it among the newest few.
	for i := len(m.ranges) - 1; i >= 0 && i >= len(m.ranges)-8; i-- {
		if m.ranges[i].lo == a {
			m.ranges[i].n, m.ranges[i].w = uint64(size), writable
			m.hot = m.ranges[i]
			return
		}
	}
	if len(m.ranges) >= maxRanges {
		n := copy(m.ranges, m.ranges[maxRanges/2:])
		m.ranges = m.ranges[:n]
	}
	m.ranges = append(m.ranges, memRange{lo: a, n: uint64(size), w: writable})
	m.hot = m.ranges[len(m.ranges)-1]
}

// RevokeRange withdraws a range AllowRange added starting at addr (after
// bpf_ringbuf_submit, say). It reports whether there was one.
func (m *Machine) RevokeRange(addr uintptr) bool {
	a := uint64(addr)
	for i := range m.ranges {
		if m.ranges[i].lo == a {
			m.ranges = append(m.ranges[:i], m.ranges[i+1:]...)
			m.hot = memRange{}
			return true
		}
	}
	return false
}

// CanAccess reports whether the program may currently read (or, if
// write, write) [addr, addr+size).
func (m *Machine) CanAccess(addr, size uint64, write bool) bool {
	if addr-m.lo <= m.span && size <= m.span-(addr-m.lo) {
		return true
	}
	return m.inRange(addr, size, write)
}

// Bytes returns [addr, addr+size) as a slice if the program may access it
// (for helpers taking pointer arguments), or nil, false.
func (m *Machine) Bytes(addr, size uint64, write bool) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	if size > 1<<40 || !m.CanAccess(addr, size, write) {
		return nil, false
	}
	return unsafe.Slice((*byte)(ptr(addr)), size), true
}

// inRange checks the ranges other than the stack: ctx, helper ranges
// (newest first), global data. A range it finds becomes the hot range
// fast checks first.
func (m *Machine) inRange(a, n uint64, w bool) bool {
	if off := a - m.ctxLo; off < m.ctxN && n <= m.ctxN-off {
		return true
	}
	for i := len(m.ranges) - 1; i >= 0; i-- {
		r := &m.ranges[i]
		if off := a - r.lo; off < r.n && n <= r.n-off {
			m.hot = *r
			return r.w || !w
		}
	}
	if m.code != nil {
		for i := range m.code.globals {
			r := &m.code.globals[i]
			if off := a - r.lo; off < r.n && n <= r.n-off {
				m.hot = *r
				return r.w || !w
			}
		}
	}
	return false
}
