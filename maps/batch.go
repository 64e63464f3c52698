package maps

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/userbpf/userbpf/shm"
)

// Batch commands (BPF_MAP_*_BATCH). keys and values hold count elements
// back to back (count = len(keys)/KeySize; values are UserValueSize each).
// Each returns how many elements it processed, also on error, as the
// kernel writes back batch.count.
//
// Cursors: for hash maps, in and out are a 4-byte bucket index (in == nil
// starts at bucket 0); for arrays they are keys (in == nil starts at the
// first key). out receives the cursor to pass as in next time.
//
// The support matrix is the kernel's: hashes have all four; arrays have
// lookup and update (the others are ErrNotSupported).

// removeNotifier is implemented by types that must know when a batch
// removes an element (a map-in-map drops its inner map's reference).
type removeNotifier interface {
	removed(m *Map, value unsafe.Pointer)
}

// batchOps is implemented by types whose lookup batches walk buckets.
type batchOps interface {
	lookupBatch(m *Map, in, out, keys, values []byte, elemFlags, flags uint64, del bool) (int, error)
}

func (m *Map) batchCount(keys, values []byte, needValues bool) (int, error) {
	if len(keys)%int(m.keySize) != 0 {
		return 0, fmt.Errorf("%w: keys buffer of %d bytes is not a whole number of %d-byte keys", ErrInvalid, len(keys), m.keySize)
	}
	n := len(keys) / int(m.keySize)
	if needValues && len(values) != n*m.UserValueSize() {
		return 0, fmt.Errorf("%w: values buffer of %d bytes does not hold %d values of %d bytes", ErrInvalid, len(values), n, m.UserValueSize())
	}
	return n, nil
}

func checkElemFlags(m *Map, elemFlags uint64) error {
	if elemFlags&^FlagLock != 0 {
		return fmt.Errorf("%w: batch elem_flags %#x", ErrInvalid, elemFlags)
	}
	return m.checkLockFlag(elemFlags)
}

// LookupBatch copies up to count elements starting at cursor in. At the
// end of the map it returns ErrKeyNotExist with the number copied; for hash
// maps a bucket larger than the room left is ErrNoSpace if nothing was
// copied yet (retry with bigger buffers).
func (m *Map) LookupBatch(in, out, keys, values []byte, elemFlags, flags uint64) (int, error) {
	return m.lookupBatch("lookup batch", in, out, keys, values, elemFlags, flags, false)
}

// LookupAndDeleteBatch is LookupBatch that also deletes what it copies
// (hash maps only).
func (m *Map) LookupAndDeleteBatch(in, out, keys, values []byte, elemFlags, flags uint64) (int, error) {
	return m.lookupBatch("lookup and delete batch", in, out, keys, values, elemFlags, flags, true)
}

func (m *Map) lookupBatch(cmd string, in, out, keys, values []byte, elemFlags, flags uint64, del bool) (int, error) {
	if err := m.batchAllowed(lookupBatchCmd(del)); err != nil {
		return 0, m.errorf(cmd, err)
	}
	var err error
	switch {
	case !m.canRead || del && (!m.canWrite || m.Frozen()):
		err = fmt.Errorf("%w: handle lacks the access the command needs", ErrPermission)
	}
	bo, isHash := m.ops.(batchOps)
	if err == nil && del && !isHash {
		err = ErrNotSupported
	}
	var count int
	if err == nil {
		count, err = m.batchCount(keys, values, true)
	}
	if err != nil {
		return 0, m.errorf(cmd, err)
	}
	var n int
	if isHash {
		n, err = bo.lookupBatch(m, in, out, keys, values, elemFlags, flags, del)
	} else {
		n, err = m.genericLookupBatch(in, out, keys, values, count, elemFlags)
	}
	if err != nil {
		return n, m.errorf(cmd, err)
	}
	return n, nil
}

// genericLookupBatch is the kernel's generic_map_lookup_batch: get_next_key
// then lookup, cursor = the last key copied.
func (m *Map) genericLookupBatch(in, out, keys, values []byte, count int, elemFlags uint64) (int, error) {
	if err := checkElemFlags(m, elemFlags); err != nil {
		return 0, err
	}
	if count == 0 {
		return 0, nil
	}
	ks, vs := int(m.keySize), m.UserValueSize()
	if in != nil && len(in) != ks || len(out) != ks {
		return 0, fmt.Errorf("%w: batch cursors must be %d-byte keys", ErrInvalid, ks)
	}
	prev := in
	var err error
	cp := 0
	for cp < count {
		key := keys[cp*ks : (cp+1)*ks]
		if err = m.NextKey(prev, key); err != nil {
			err = ErrKeyNotExist
			break
		}
		if err = m.Lookup(key, values[cp*vs:(cp+1)*vs], elemFlags); err != nil {
			// Vanished between the two steps, or an empty map-in-map slot:
			// skip it, as the kernel does, and go on from it.
			err = nil
			prev = append(prev[:0:0], key...)
			continue
		}
		prev = key
		cp++
	}
	if cp > 0 {
		copy(out, prev)
	}
	return cp, err
}

// UpdateBatch applies Update to each key and value in order with
// elemFlags, stopping at the first error.
func (m *Map) UpdateBatch(keys, values []byte, elemFlags, flags uint64) (int, error) {
	if err := m.batchAllowed(batchUpdate); err != nil {
		return 0, m.errorf("update batch", err)
	}
	count, err := m.batchCount(keys, values, true)
	if err == nil {
		err = m.writable()
	}
	if err == nil {
		err = checkElemFlags(m, elemFlags)
	}
	if err != nil {
		return 0, m.errorf("update batch", err)
	}
	ks, vs := int(m.keySize), m.UserValueSize()
	for cp := 0; cp < count; cp++ {
		if err := m.Update(keys[cp*ks:(cp+1)*ks], values[cp*vs:(cp+1)*vs], elemFlags); err != nil {
			return cp, err
		}
	}
	return count, nil
}

// DeleteBatch deletes each key in order, stopping at the first error.
// elemFlags may only be FlagLock (and only on a map with a lock), as in the
// kernel, which has no batch.flags for this command worth passing. Arrays
// do not support it (ErrNotSupported).
func (m *Map) DeleteBatch(keys []byte, elemFlags uint64) (int, error) {
	if err := m.batchAllowed(batchDelete); err != nil {
		return 0, m.errorf("delete batch", err)
	}
	count, err := m.batchCount(keys, nil, false)
	if err == nil {
		err = m.writable()
	}
	if _, isHash := m.ops.(batchOps); err == nil && !isHash && !m.hasBatch(batchDelete) {
		err = ErrNotSupported
	}
	if err == nil {
		err = checkElemFlags(m, elemFlags)
	}
	if err != nil {
		return 0, m.errorf("delete batch", err)
	}
	ks := int(m.keySize)
	for cp := 0; cp < count; cp++ {
		if err := m.Delete(keys[cp*ks : (cp+1)*ks]); err != nil {
			return cp, err
		}
	}
	return count, nil
}

// lookupBatch is __htab_map_lookup_and_delete_batch: whole buckets at a
// time, each copied (and emptied) under its lock.
func (h *hashOps) lookupBatch(m *Map, in, out, keys, values []byte, elemFlags, flags uint64, del bool) (int, error) {
	if err := checkElemFlags(m, elemFlags); err != nil {
		return 0, err
	}
	if flags != 0 {
		return 0, fmt.Errorf("%w: batch flags %#x (hash maps take none)", ErrInvalid, flags)
	}
	count := len(keys) / int(m.keySize)
	if count == 0 {
		return 0, nil
	}
	if in != nil && len(in) != 4 || len(out) != 4 {
		return 0, fmt.Errorf("%w: hash batch cursors are 4-byte bucket indexes", ErrInvalid)
	}
	batch := uint32(0)
	if in != nil {
		batch = binary.NativeEndian.Uint32(in)
	}
	if batch >= m.d.NBuckets {
		return 0, ErrKeyNotExist
	}
	ks, vs := int(m.keySize), m.UserValueSize()
	total := 0
	var err error
	for {
		b := h.bucket(m, batch)
		h.lockBucket(m, b)
		n := 0
		for off := h.load(m, h.headLink(m, b)); off != 0; off = h.load(m, h.nextLink(m, off)) {
			if n++; n > int(m.hc.maxSteps) {
				break // a cycle: only corruption makes one
			}
		}
		if n > int(m.hc.maxSteps) {
			b.Lock.Unlock()
			err = fmt.Errorf("%w: bucket %d links in a cycle", shm.ErrCorrupt, batch)
			break
		}
		if n > count-total {
			b.Lock.Unlock()
			if total == 0 {
				err = fmt.Errorf("%w: bucket %d holds %d elements, the buffers %d", ErrNoSpace, batch, n, count)
			}
			break
		}
		var dead []uint64
		for off := h.load(m, h.headLink(m, b)); off != 0; off = h.load(m, h.nextLink(m, off)) {
			copy(keys[total*ks:], h.key(m, off))
			if sc, ok := m.ops.(storedCopier); ok {
				sc.copyStoredOut(m, values[total*vs:(total+1)*vs], h.value(m, off))
			} else {
				m.copyOutAny(values[total*vs:(total+1)*vs], h.value(m, off), elemFlags)
			}
			total++
			if del {
				dead = append(dead, off)
				if rm, ok := m.ops.(removeNotifier); ok {
					rm.removed(m, h.value(m, off))
				}
			}
		}
		if del && len(dead) > 0 {
			h.store(m, h.headLink(m, b), 0)
			m.d.Count.Add(-int64(len(dead)))
		}
		b.Lock.Unlock()
		for _, off := range dead {
			h.putElem(m, off, true)
		}
		batch++
		if batch >= m.d.NBuckets {
			err = ErrKeyNotExist
			break
		}
	}
	binary.NativeEndian.PutUint32(out, batch)
	return total, err
}
