package maps

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/futex"
	"github.com/userbpf/userbpf/shm"
)

// mapInMapOps implements ARRAY_OF_MAPS and HASH_OF_MAPS (kernel/bpf/
// map_in_map.c, arraymap.c's fd arrays, hashtab.c's htab of maps).
//
// User space sees 4-byte values: an update takes the inner map's ID (where
// the kernel takes its fd) and a lookup returns it. Inside, each slot (the
// array's 8-byte stride, a hash element's 8-byte value) holds the offset of
// the inner map's descriptor, stored and loaded atomically, so a reader in
// a read-side section always finds a whole descriptor offset.
//
// Each inner map counts the outer slots that hold it (desc.OuterRefs).
// WaitUnreferenced waits for that count to reach zero and then for a grace
// period: from then on no reader can reach the map through any outer map.
// A process killed between counting a new reference and storing the slot
// leaves the count one too high (WaitUnreferenced then times out).
//
// The inner-map template (innerMeta, 24 bytes, pointed to by desc.Meta):
//
//	0  Type u32   4  KeySize u32   8  ValueSize u32
//	12 MaxEntries u32 (ignored with BPF_F_INNER_MAP)   16 Flags u32   20 LockOff u32
type mapInMapOps struct {
	hash *hashOps // nil: ARRAY_OF_MAPS
}

type innerMeta struct {
	Type, KeySize, ValueSize, MaxEntries, Flags, LockOff uint32
}

// allocCheck is fd_array_map_alloc_check / the htab check, then (as the
// kernel's map_alloc resolves inner_map_fd before the name is checked) the
// template's presence.
func (o *mapInMapOps) allocCheck(s *Spec, ncpu int) error {
	var err error
	if o.hash != nil {
		err = o.hash.allocCheck(s, ncpu)
	} else {
		switch {
		case s.ValueSize != 4:
			err = fmt.Errorf("%w: %s values are 4-byte map IDs (value size %d)", ErrInvalid, s.Type, s.ValueSize)
		case s.Flags&(FlagRdOnlyProg|FlagWrOnlyProg) != 0:
			err = fmt.Errorf("%w: BPF_F_RDONLY_PROG/WRONLY_PROG on an ARRAY_OF_MAPS", ErrInvalid)
		default:
			err = arrayOps{}.allocCheck(s, ncpu) // MMAPABLE and INNER_MAP: ARRAY only
		}
	}
	if err == nil && o.hash != nil && s.ValueSize != 4 {
		err = fmt.Errorf("%w: %s values are 4-byte map IDs (value size %d)", ErrInvalid, s.Type, s.ValueSize)
	}
	if err == nil && s.InnerMap == nil {
		err = fmt.Errorf("%w: a map-in-map needs an inner map template", ErrBadMap)
	}
	return err
}

func (o *mapInMapOps) alloc(m *Map) error {
	tmpl := m.creating.InnerMap
	switch {
	case tmpl == nil:
		return fmt.Errorf("%w: a map-in-map needs an inner map template", ErrBadMap)
	case tmpl.region != m.region:
		return fmt.Errorf("%w: the inner map template lives in another region", ErrInvalid)
	case tmpl.typ == ArrayOfMaps || tmpl.typ == HashOfMaps:
		return fmt.Errorf("%w: maps of maps of maps are not supported (nor by the kernel)", ErrInvalid)
	}
	meta, err := m.region.Alloc(uint64(unsafe.Sizeof(innerMeta{})))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoMemory, err)
	}
	*(*innerMeta)(m.region.Pointer(meta)) = innerMeta{Type: uint32(tmpl.typ), KeySize: tmpl.keySize,
		ValueSize: tmpl.valueSize, MaxEntries: tmpl.maxEntries, Flags: tmpl.flags, LockOff: tmpl.lockOff}
	m.d.Meta = meta
	if o.hash != nil {
		err = o.hash.alloc(m)
	} else {
		err = arrayOps{}.alloc(m)
	}
	if err != nil {
		m.region.Free(meta)
	}
	return err
}

func (o *mapInMapOps) free(m *Map) {
	if o.hash != nil {
		o.hash.free(m)
	} else {
		arrayOps{}.free(m)
	}
	m.region.Free(m.d.Meta)
}

func (o *mapInMapOps) validate(m *Map) error {
	if _, err := m.region.Bytes(m.d.Meta, uint64(unsafe.Sizeof(innerMeta{}))); err != nil {
		return err
	}
	if o.hash != nil {
		return o.hash.validate(m)
	}
	return arrayOps{}.validate(m)
}

// slotWord is where key's inner-map descriptor offset lives, or nil.
func (o *mapInMapOps) slotWord(m *Map, key []byte) *atomic.Uint64 {
	var p unsafe.Pointer
	if o.hash != nil {
		p = o.hash.lookupElem(m, key)
	} else {
		p = arrayOps{}.lookupElem(m, key)
	}
	return (*atomic.Uint64)(p)
}

func (o *mapInMapOps) lookupElem(m *Map, key []byte) unsafe.Pointer {
	return unsafe.Pointer(o.slotWord(m, key))
}

// lookupCopy returns the inner map's ID.
func (o *mapInMapOps) lookupCopy(m *Map, key, value []byte, flags uint64) error {
	if flags != 0 {
		return fmt.Errorf("%w: lookup flags %#x on a map-in-map", ErrInvalid, flags)
	}
	var id uint32
	rerr := m.rcu.ReadPinned(func() {
		if w := o.slotWord(m, key); w != nil {
			if off := w.Load(); off != 0 {
				id = (*desc)(m.region.Pointer(off)).ID
			}
		}
	})
	if rerr != nil {
		return rerr
	}
	if id == 0 {
		return ErrKeyNotExist
	}
	binary.NativeEndian.PutUint32(value, id)
	return nil
}

func (o *mapInMapOps) update(m *Map, key, value []byte, flags uint64) error {
	wait := flags&FlagWaitGrace != 0
	flags &^= FlagWaitGrace
	// The kernel's order: an fd array checks flags and index first; a
	// hash of maps resolves the inner map first, then the hash checks flags.
	if o.hash == nil {
		if flags != UpdateAny {
			return fmt.Errorf("%w: update flags %#x on an ARRAY_OF_MAPS (only BPF_ANY)", ErrInvalid, flags)
		}
		if i := binary.NativeEndian.Uint32(key); i >= m.maxEntries {
			return fmt.Errorf("%w: index %d is past max_entries %d", ErrFull, i, m.maxEntries)
		}
	}
	inner, err := m.innerByID(binary.NativeEndian.Uint32(value))
	if err != nil {
		return err
	}
	if o.hash != nil && flags > UpdateExist {
		return fmt.Errorf("%w: update flags %#x on a HASH_OF_MAPS", ErrInvalid, flags)
	}
	if err := o.compatible(m, inner); err != nil {
		return err
	}
	inner.d.OuterRefs.Add(1)
	var old uint64
	if o.hash == nil {
		old = o.slotWord(m, key).Swap(inner.descOff)
	} else {
		old, err = o.hashStore(m, key, inner.descOff, flags)
		if err != nil {
			dropRef(inner.d)
			return err
		}
	}
	if old != 0 {
		dropRef((*desc)(m.region.Pointer(old)))
	}
	if wait {
		m.rcu.Synchronize()
	}
	return nil
}

// hashStore sets key's slot in a HASH_OF_MAPS: in place (one atomic store)
// if the key exists, else as a new element. It returns the replaced
// descriptor offset.
func (o *mapInMapOps) hashStore(m *Map, key []byte, descOff uint64, flags uint64) (uint64, error) {
	h := o.hash
	hash := keyHash(key, m.hc.seed)
	b := h.bucket(m, hash)
	h.lockBucket(m, b)
	if cur, _ := h.find(m, b, key); cur != 0 {
		defer b.Lock.Unlock()
		if flags == UpdateNoExist {
			return 0, ErrKeyExist
		}
		return (*atomic.Uint64)(h.value(m, cur)).Swap(descOff), nil
	}
	b.Lock.Unlock()
	if flags == UpdateExist {
		return 0, ErrKeyNotExist
	}
	nu, err := h.getElem(m)
	if err != nil {
		return 0, err
	}
	h.lockBucket(m, b)
	defer b.Lock.Unlock()
	if cur, _ := h.find(m, b, key); cur != 0 { // raced with another insert
		h.putElem(m, nu, false)
		if flags == UpdateNoExist {
			return 0, ErrKeyExist
		}
		return (*atomic.Uint64)(h.value(m, cur)).Swap(descOff), nil
	}
	if !h.reserve(m) {
		h.putElem(m, nu, false)
		return 0, fmt.Errorf("%w: map holds max_entries (%d) elements", ErrFull, m.maxEntries)
	}
	h.fill(m, nu, key, make([]byte, m.valueSize))
	(*atomic.Uint64)(h.value(m, nu)).Store(descOff)
	h.linkHead(m, b, nu)
	return 0, nil
}

func (o *mapInMapOps) delete(m *Map, key []byte) error {
	return o.deleteFlags(m, key, 0)
}

func (o *mapInMapOps) deleteFlags(m *Map, key []byte, flags uint64) error {
	var old uint64
	if o.hash == nil {
		if i := binary.NativeEndian.Uint32(key); i >= m.maxEntries {
			return fmt.Errorf("%w: index %d is past max_entries %d", ErrFull, i, m.maxEntries)
		}
		old = o.slotWord(m, key).Swap(0)
		if old == 0 {
			return ErrKeyNotExist
		}
	} else if err := o.hash.unlinkKey(m, key, func(v unsafe.Pointer) { old = (*atomic.Uint64)(v).Load() }); err != nil {
		return err
	}
	dropRef((*desc)(m.region.Pointer(old)))
	if flags&FlagWaitGrace != 0 {
		m.rcu.Synchronize()
	}
	return nil
}

func (o *mapInMapOps) nextKey(m *Map, key, next []byte) error {
	if o.hash != nil {
		return o.hash.nextKey(m, key, next)
	}
	return arrayOps{}.nextKey(m, key, next)
}

// compatible is bpf_map_meta_equal: type, sizes and flags must match the
// template, and for an ARRAY template without BPF_F_INNER_MAP, max_entries.
func (o *mapInMapOps) compatible(m *Map, inner *Map) error {
	t := (*innerMeta)(m.region.Pointer(m.d.Meta))
	switch {
	case uint32(inner.typ) != t.Type || inner.keySize != t.KeySize || inner.valueSize != t.ValueSize ||
		inner.flags != t.Flags || inner.lockOff != t.LockOff:
		return fmt.Errorf("%w: inner map %q (%s key %d value %d flags %#x) does not match the template (%s key %d value %d flags %#x)",
			ErrInvalid, inner.name, inner.typ, inner.keySize, inner.valueSize, inner.flags, Type(t.Type), t.KeySize, t.ValueSize, t.Flags)
	case Type(t.Type) == Array && t.Flags&FlagInnerMap == 0 && inner.maxEntries != t.MaxEntries:
		// Only a plain ARRAY template pins max_entries (array_map_meta_equal);
		// every other type matches on type, sizes and flags alone.
		return fmt.Errorf("%w: inner map %q has max_entries %d, the template %d (create the template with BPF_F_INNER_MAP to allow any)",
			ErrInvalid, inner.name, inner.maxEntries, t.MaxEntries)
	}
	return nil
}

// dropRef counts one outer slot less on an inner map and wakes
// WaitUnreferenced when none is left.
func dropRef(d *desc) {
	if d.OuterRefs.Add(^uint32(0)) == 0 {
		futex.WakeAll(&d.OuterRefs)
	}
}

// DeleteFlags is Delete with flags: FlagWaitGrace (map-in-map only) waits
// for a grace period before returning, so no reader still uses the inner
// map that was removed.
func (m *Map) DeleteFlags(key []byte, flags uint64) error {
	o, ok := m.ops.(*mapInMapOps)
	if flags == 0 {
		return m.Delete(key)
	}
	if !ok || flags != FlagWaitGrace {
		return m.errorf("delete", fmt.Errorf("%w: delete flags %#x", ErrInvalid, flags))
	}
	err := m.writable()
	if err == nil {
		err = m.checkKey(key)
	}
	if err == nil {
		err = o.deleteFlags(m, key, flags)
	}
	if err != nil {
		return m.errorf("delete", err)
	}
	return nil
}

// InnerMap returns the map in key's slot of an ARRAY_OF_MAPS or
// HASH_OF_MAPS, or nil if the slot is empty — what a program gets from
// bpf_map_lookup_elem on an outer map. Call it inside a read-side section
// (Region.RCU().ReadPinned or Read) and use the inner map only inside that
// section: after the section a flip may have retired it.
func (m *Map) InnerMap(key []byte) (*Map, error) {
	o, ok := m.ops.(*mapInMapOps)
	if !ok {
		return nil, m.errorf("inner map", fmt.Errorf("%w: %s is not a map-in-map", ErrInvalid, m.typ))
	}
	if err := m.checkKey(key); err != nil {
		return nil, m.errorf("inner map", err)
	}
	w := o.slotWord(m, key)
	if w == nil {
		return nil, nil
	}
	off := w.Load()
	if off == 0 {
		return nil, nil
	}
	return m.handleAt(off)
}

// WaitUnreferenced returns once no outer map slot holds m and a grace
// period has passed since the last one let go, so that no read-side
// section in any process can still be using m. It returns ErrTimeout if
// that has not happened within timeout.
func (m *Map) WaitUnreferenced(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := m.d.OuterRefs.Load()
		if n == 0 {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			return m.errorf("wait unreferenced", fmt.Errorf("%w: still in %d outer map slots after %v", ErrTimeout, n, timeout))
		}
		futex.Wait(&m.d.OuterRefs, n, left)
	}
	m.rcu.Synchronize()
	return nil
}

// OuterRefs is the number of outer-map slots holding m.
func (m *Map) OuterRefs() uint32 { return m.d.OuterRefs.Load() }

// handles caches one handle per map descriptor and region in this process,
// so that resolving an inner map on every program-side lookup is a map read.
var handles sync.Map // handleKey → *Map

type handleKey struct {
	region  *shm.Region
	descOff uint64
}

// handleAt returns a handle (read-write) on the map whose descriptor is at off.
func (m *Map) handleAt(off uint64) (*Map, error) {
	k := handleKey{m.region, off}
	if h, ok := handles.Load(k); ok {
		return h.(*Map), nil
	}
	if _, err := m.region.Bytes(off, descSize); err != nil {
		return nil, fmt.Errorf("%w: inner map descriptor at %#x: %v", shm.ErrCorrupt, off, err)
	}
	h := &Map{region: m.region, rcu: m.rcu, rcuWords: m.rcuWords, holder: m.holder, descOff: off,
		d: (*desc)(m.region.Pointer(off))}
	if err := h.validateDesc(); err != nil {
		return nil, fmt.Errorf("%w: inner map descriptor at %#x: %v", shm.ErrCorrupt, off, err)
	}
	h.name = fmt.Sprintf("id:%d", h.d.ID)
	h.setAccess(0)
	actual, _ := handles.LoadOrStore(k, h)
	return actual.(*Map), nil
}

// byID caches, per region, where the map with an ID keeps its descriptor.
var byID sync.Map // idKey → uint64

type idKey struct {
	region *shm.Region
	id     uint32
}

// innerByID finds the map with the given ID in m's region: from the cache
// (checked against the descriptor's ID), else by a directory scan.
func (m *Map) innerByID(id uint32) (*Map, error) {
	k := idKey{m.region, id}
	if off, ok := byID.Load(k); ok {
		if h, err := m.handleAt(off.(uint64)); err == nil && h.d.ID == id {
			return h, nil
		}
		byID.Delete(k)
	}
	h, err := m.scanByID(id)
	if err == nil {
		byID.Store(k, h.descOff)
	}
	return h, err
}

func (m *Map) scanByID(id uint32) (*Map, error) {
	if id != 0 {
		for _, obj := range m.region.Objects() {
			if obj.Kind != KindMap || obj.Size != descSize {
				continue
			}
			if _, err := m.region.Bytes(obj.Off, descSize); err != nil {
				continue
			}
			if (*desc)(m.region.Pointer(obj.Off)).ID == id {
				return m.handleAt(obj.Off)
			}
		}
	}
	return nil, fmt.Errorf("%w: no map with ID %d in region %s", ErrBadMap, id, m.region.Path())
}

// copyStoredOut shows user space the inner map's ID (the stored value is
// its descriptor offset).
func (o *mapInMapOps) copyStoredOut(m *Map, dst []byte, p unsafe.Pointer) {
	id := uint32(0)
	if off := (*atomic.Uint64)(p).Load(); off != 0 {
		id = (*desc)(m.region.Pointer(off)).ID
	}
	binary.NativeEndian.PutUint32(dst, id)
}

// removed drops the reference of an inner map a batch took out.
func (o *mapInMapOps) removed(m *Map, p unsafe.Pointer) {
	if off := (*atomic.Uint64)(p).Load(); off != 0 {
		dropRef((*desc)(m.region.Pointer(off)))
	}
}

// hasBatch is the kernel's matrix: an ARRAY_OF_MAPS has the generic lookup
// and update batches; a HASH_OF_MAPS all four, its lookups by bucket.
func (o *mapInMapOps) hasBatch(cmd batchCmd) bool {
	return o.hash != nil || cmd == batchLookup || cmd == batchUpdate
}

// lookupBatch walks buckets for a HASH_OF_MAPS, keys for an ARRAY_OF_MAPS.
func (o *mapInMapOps) lookupBatch(m *Map, in, out, keys, values []byte, elemFlags, flags uint64, del bool) (int, error) {
	if o.hash == nil {
		return m.genericLookupBatch(in, out, keys, values, len(keys)/int(m.keySize), elemFlags)
	}
	return o.hash.lookupBatch(m, in, out, keys, values, elemFlags, flags, del)
}
