package maps

import "fmt"

// Lookup copies key's value into value (UserValueSize bytes). flags may be
// FlagLock to copy under the value's spin lock. A missing key (or an array
// index past the end) is ErrKeyNotExist.
func (m *Map) Lookup(key, value []byte, flags uint64) error {
	if err := m.lookupCheck(key, value, flags); err != nil {
		return m.errorf("lookup", err)
	}
	if lc := m.lc; lc != nil {
		v := escapeCopy(value)
		if err := lc.lookupCopy(m, escapeCopy(key), v, flags); err != nil {
			return m.errorf("lookup", err)
		}
		copy(value, v)
		return nil
	}
	if m.stable {
		// Array slots never move or go away: no read-side section needed.
		p := m.opLookupElem(key)
		if p == nil {
			return m.errMiss
		}
		m.copyOutAny(value, p, flags)
		return nil
	}
	found := false
	copyValue := func() {
		if p := m.opLookupElem(key); p != nil {
			m.copyOutAny(value, p, flags)
			found = true
		}
	}
	var rerr error
	if flags&FlagLock != 0 {
		rerr = m.rcu.Read(copyValue) // may sleep on the value lock
	} else {
		rerr = m.rcu.ReadPinned(copyValue) // a plain copy never blocks
	}
	if rerr != nil {
		return m.errorf("lookup", rerr)
	}
	if !found {
		return m.errMiss // preallocated: a miss allocates nothing
	}
	return nil
}

// lookupCheck is map_lookup_elem's generic part, in the kernel's order.
func (m *Map) lookupCheck(key, value []byte, flags uint64) error {
	if flags == 0 && m.canRead && m.keySize != 0 && len(key) == int(m.keySize) && len(value) == m.UserValueSize() {
		return nil // the common case, which no check below refuses, in one test
	}
	if flags&^FlagLock != 0 {
		return fmt.Errorf("%w: lookup flags %#x", ErrInvalid, flags)
	}
	if err := m.readable(); err != nil {
		return err
	}
	if err := m.checkLockFlag(flags); err != nil {
		return err
	}
	if err := m.checkKey(key); err != nil {
		return err
	}
	return m.checkValue(value)
}

// Update stores value under key. flags is UpdateAny, UpdateNoExist or
// UpdateExist, optionally with FlagLock.
func (m *Map) Update(key, value []byte, flags uint64) error {
	err := m.updateCheck(key, value, flags)
	if err == nil {
		err = m.opUpdate(key, value, flags) // writers lock; they must not sit in a read section (they may wait for a grace period)
	}
	if err != nil {
		return m.errorf("update", err)
	}
	m.emit(EventUpdate, key, value)
	return nil
}

// updateCheck is what every map checks before an update, in the kernel's
// order.
func (m *Map) updateCheck(key, value []byte, flags uint64) error {
	if flags&FlagLock == 0 && m.canWrite && m.keySize != 0 && len(key) == int(m.keySize) &&
		len(value) == m.UserValueSize() && m.d.Frozen.Load() == 0 {
		return nil // the common case, which no check below refuses, in one test
	}
	if err := m.writable(); err != nil {
		return err
	}
	if err := m.checkLockFlag(flags); err != nil {
		return err
	}
	if err := m.checkKey(key); err != nil {
		return err
	}
	return m.checkValue(value)
}

// Delete removes key.
func (m *Map) Delete(key []byte) error {
	err := m.writable()
	if err == nil {
		err = m.checkKey(key)
	}
	if err == nil {
		err = m.opDelete(key)
	}
	if err != nil {
		return m.errorf("delete", err)
	}
	m.emit(EventDelete, key, nil)
	return nil
}

// NextKey writes the key after key into next; a nil key, or one that is
// not in the map, gives the first key. After the last key it returns
// ErrKeyNotExist.
func (m *Map) NextKey(key, next []byte) error {
	err := m.readable()
	if err == nil && key != nil {
		err = m.checkKey(key)
	}
	if err == nil && len(next) != int(m.keySize) {
		err = fmt.Errorf("%w: next-key buffer is %d bytes, the map's keys are %d", ErrInvalid, len(next), m.keySize)
	}
	if err == nil {
		if rerr := m.rcu.ReadPinned(func() { err = m.ops.nextKey(m, key, next) }); rerr != nil {
			err = rerr
		}
	}
	if err != nil {
		return m.errorf("get next key", err)
	}
	return nil
}

// LookupAndDelete copies key's value into value and removes key, as one
// step. Only hash maps support it (others: ErrNotSupported).
func (m *Map) LookupAndDelete(key, value []byte, flags uint64) error {
	var err error
	if flags&^FlagLock != 0 {
		err = fmt.Errorf("%w: flags %#x", ErrInvalid, flags)
	}
	if err == nil {
		err = m.readable()
	}
	if err == nil {
		err = m.writable()
	}
	if err == nil {
		err = m.checkLockFlag(flags)
	}
	if err == nil {
		err = m.checkKey(key)
	}
	if err == nil {
		err = m.checkValue(value)
	}
	if err == nil {
		ld, ok := m.ops.(lookupAndDeleter)
		if !ok {
			err = ErrNotSupported
		} else {
			err = ld.lookupAndDelete(m, key, value, flags)
		}
	}
	if err != nil {
		return m.errorf("lookup and delete", err)
	}
	m.emit(EventDelete, key, nil)
	return nil
}

// Freeze makes the map read-only for user space for good. A second freeze
// is ErrPermission (a frozen map is no longer writable); a map whose value
// has a spin lock cannot be frozen (ErrNotSupported), as in the kernel.
func (m *Map) Freeze() error {
	var err error
	// The kernel's order: special fields, then write permission (which a
	// frozen map has lost, so a second freeze is EPERM), then EBUSY.
	switch {
	case m.lockOff != noLock:
		err = fmt.Errorf("%w: the value has a bpf_spin_lock", ErrNotSupported)
	case m.writable() != nil:
		err = m.writable()
	case !m.d.Frozen.CompareAndSwap(0, 1):
		err = fmt.Errorf("%w: already frozen", ErrBusy)
	}
	if err != nil {
		return m.errorf("freeze", err)
	}
	return nil
}

// WithLock runs fn on key's value in place, holding the value's
// bpf_spin_lock: the very lock programs take with bpf_spin_lock and that
// FlagLock commands take, in every process. fn must not keep the slice or
// touch the lock word. The map must have a lock (else ErrInvalid).
func (m *Map) WithLock(key []byte, fn func(value []byte) error) error {
	var err error
	switch {
	case m.lockOff == noLock:
		err = fmt.Errorf("%w: the map's value has no bpf_spin_lock", ErrInvalid)
	default:
		err = m.writable()
	}
	if err == nil {
		err = m.checkKey(key)
	}
	if err != nil {
		return m.errorf("locked update", err)
	}
	found := false
	rerr := m.rcu.Read(func() {
		p := m.opLookupElem(key)
		if p == nil {
			return
		}
		found = true
		l := m.valueLock(p)
		l.Lock(m.holder)
		defer l.Unlock()
		err = fn(storage(p, m.valueSize))
		if err == nil {
			m.emitStored(EventUpdate, key, p) // the value as fn left it, still under the lock
		}
	})
	if rerr != nil {
		return m.errorf("locked update", rerr)
	}
	if !found {
		return m.errorf("locked update", ErrKeyNotExist)
	}
	return err
}

// View runs fn on key's value in place, inside an RCU read-side section,
// without copying (zero-copy). For per-CPU maps the slice holds every CPU's
// copy. fn must not keep the slice: after View returns, the element may be
// reused.
func (m *Map) View(key []byte, fn func(value []byte)) error {
	err := m.readable()
	if err == nil {
		err = m.checkKey(key)
	}
	if err != nil {
		return m.errorf("view", err)
	}
	found := false
	rerr := m.rcu.Read(func() {
		if p := m.opLookupElem(key); p != nil {
			found = true
			n := m.valueSize
			if m.typ.perCPU() {
				n = uint32(m.ncpu) * m.stride
			}
			fn(storage(p, n))
		}
	})
	if rerr != nil {
		return m.errorf("view", rerr)
	}
	if !found {
		return m.errorf("view", ErrKeyNotExist)
	}
	return nil
}
