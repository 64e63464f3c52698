package maps

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
)

// KindMap marks map descriptors in the region's directory.
const KindMap = 1

// Map is a handle on a map in a region. Handles are per process and carry
// an access mode, like the kernel's map fds; all handles of a map share its
// data. A Map is safe for concurrent use.
type Map struct {
	region   *shm.Region
	rcu      *rcu.Domain
	rcuWords shm.RCUWords
	holder   *lock.Holder
	ops      mapOps

	name    string
	descOff uint64
	d       *desc

	// Immutable, validated copies of the descriptor's fields.
	typ        Type
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	flags      uint32
	lockOff    uint32
	ncpu       int
	stride     uint32 // round_up(valueSize, 8)

	canRead, canWrite bool
	stable            bool // values never move (arrays): lookups need no RCU section

	errMiss error // "lookup map NAME: key does not exist", built once

	creating *Spec // the spec, while Create runs ops.alloc

	hc hashCache // hash maps: immutable geometry for the read path
	// Resolved once from ops, so the hot commands do no type assertions.
	lc  lookupCopier // types whose lookup copies by itself, else nil
	lru *hashOps     // LRU hashes (program lookups mark elements), else nil

	g mapGraph // the value's containers, if it has any
}

// Create creates a map in the region and returns a handle on it. Checks
// run in the kernel's order (generic attributes, the type's own, the name,
// the value lock) and each failure returns the kernel's errno.
func Create(r *shm.Region, d *rcu.Domain, spec Spec) (*Map, error) {
	ops, err := spec.validateGeneric()
	if err == nil {
		err = ops.allocCheck(&spec, r.NumCPU())
	}
	if err == nil {
		err = spec.validateName()
	}
	if err == nil {
		err = spec.validateLock()
	}
	if err == nil {
		err = spec.validateGraph()
	}
	if err != nil {
		return nil, fmt.Errorf("create map %q: %w", spec.Name, err)
	}
	off, err := r.Alloc(descSize)
	if err != nil {
		return nil, fmt.Errorf("create map %q: %w: %v", spec.Name, ErrNoMemory, err)
	}
	m := &Map{region: r, rcu: d, rcuWords: r.RCU(), holder: r.Holder(), ops: ops, name: spec.Name, descOff: off,
		d: (*desc)(r.Pointer(off))}
	dd := m.d
	dd.Magic, dd.Version = descMagic, descVersion
	dd.Type, dd.KeySize, dd.ValueSize, dd.MaxEntries = uint32(spec.Type), spec.KeySize, spec.ValueSize, spec.MaxEntries
	dd.Flags = spec.Flags &^ (FlagRdOnly | FlagWrOnly)
	dd.LockOff = noLock
	if spec.HasLock {
		dd.LockOff = spec.LockOffset
	}
	dd.NCPU = uint32(r.NumCPU())
	dd.ID = r.NewObjectID()
	if spec.Graph != nil {
		toff, err := graph.Of(r).StoreTable(spec.Graph)
		if err != nil {
			r.Free(off)
			return nil, fmt.Errorf("create map %q: %w", spec.Name, err)
		}
		dd.Graph = toff
		if err := m.loadGraph(); err != nil {
			r.Free(toff)
			r.Free(off)
			return nil, fmt.Errorf("create map %q: %w", spec.Name, err)
		}
	}
	m.loadDesc()
	m.creating = &spec
	err = ops.alloc(m)
	m.creating = nil
	if err != nil {
		m.freeGraph()
		r.Free(off)
		return nil, fmt.Errorf("create map %q: %w", spec.Name, err)
	}
	m.loadDesc() // alloc may adjust max_entries (LRU rounding)
	if err := r.Publish(shm.Object{Name: spec.Name, Kind: KindMap, Off: off, Size: descSize}); err != nil {
		ops.free(m)
		m.freeGraph()
		r.Free(off)
		if errors.Is(err, shm.ErrExist) {
			return nil, fmt.Errorf("create map %q: %w", spec.Name, err)
		}
		return nil, fmt.Errorf("create map %q: %w", spec.Name, err)
	}
	m.setAccess(spec.Flags)
	return m, nil
}

// Open returns a handle on the map called name. flags may hold FlagRdOnly
// or FlagWrOnly to open a read-only or write-only handle.
func Open(r *shm.Region, d *rcu.Domain, name string, flags uint32) (*Map, error) {
	if flags&^(FlagRdOnly|FlagWrOnly) != 0 || flags == FlagRdOnly|FlagWrOnly {
		return nil, fmt.Errorf("open map %q: %w: flags %#x", name, ErrInvalid, flags)
	}
	o, err := r.Lookup(name)
	if errors.Is(err, shm.ErrNotExist) {
		return nil, fmt.Errorf("open map %q: %w: region %s has no such map", name, shm.ErrNotExist, r.Path())
	}
	if err != nil {
		return nil, fmt.Errorf("open map %q: %w", name, err)
	}
	if o.Kind != KindMap || o.Size != descSize {
		return nil, fmt.Errorf("open map %q: %w: the object is not a map", name, ErrInvalid)
	}
	if _, err := r.Bytes(o.Off, descSize); err != nil {
		return nil, fmt.Errorf("open map %q: %w: descriptor %v", name, shm.ErrCorrupt, err)
	}
	m := &Map{region: r, rcu: d, rcuWords: r.RCU(), holder: r.Holder(), name: name, descOff: o.Off, d: (*desc)(r.Pointer(o.Off))}
	if err := m.validateDesc(); err != nil {
		return nil, fmt.Errorf("open map %q: %w: %v", name, shm.ErrCorrupt, err)
	}
	m.loadDesc()
	m.setAccess(flags)
	return m, nil
}

// loadDesc copies the immutable descriptor fields into the handle.
func (m *Map) loadDesc() {
	d := m.d
	m.typ, m.keySize, m.valueSize, m.maxEntries = Type(d.Type), d.KeySize, d.ValueSize, d.MaxEntries
	m.flags, m.lockOff, m.ncpu = d.Flags, d.LockOff, int(d.NCPU)
	m.stride = roundUp8(m.valueSize)
	if m.ops == nil {
		m.ops = registry[m.typ]
	}
	_, m.stable = m.ops.(arrayOps)
	m.lc, _ = m.ops.(lookupCopier)
	if h, ok := m.ops.(*hashOps); ok && h.lru {
		m.lru = h
	}
	switch o := m.ops.(type) {
	case *hashOps:
		m.hc = o.cache(m)
	case *mapInMapOps:
		if o.hash != nil {
			m.hc = o.hash.cache(m)
		}
	}
}

// validateDesc checks a descriptor another process wrote before this one
// trusts any offset in it.
func (m *Map) validateDesc() error {
	d := m.d
	if d.Magic != descMagic || d.Version != descVersion {
		return fmt.Errorf("bad magic or version")
	}
	ops, ok := registry[Type(d.Type)]
	if !ok {
		return fmt.Errorf("unknown map type %d", d.Type)
	}
	if int(d.NCPU) != m.region.NumCPU() || d.KeySize == 0 && Type(d.Type) != Array && Type(d.Type) != PerCPUArray && !Type(d.Type).keyless() {
		return fmt.Errorf("bad sizes")
	}
	m.ops = ops
	if err := m.loadGraph(); err != nil {
		return err
	}
	m.loadDesc() // the geometry checks below use the handle's copies
	if v, ok := ops.(interface{ validate(*Map) error }); ok {
		return v.validate(m)
	}
	return nil
}

func (m *Map) setAccess(flags uint32) {
	m.errMiss = m.errorf("lookup", ErrKeyNotExist)
	m.canRead = flags&FlagWrOnly == 0
	m.canWrite = flags&FlagRdOnly == 0
}

// Close releases the handle. The map stays in the region.
func (m *Map) Close() error { return nil }

// Region is the region the map lives in.
func (m *Map) Region() *shm.Region { return m.region }

// ID is the map's ID in its region (what a map-in-map lookup returns).
func (m *Map) ID() uint32 { return m.d.ID }

// Name is the map's name in its region.
func (m *Map) Name() string { return m.name }

// Type is the map's type.
func (m *Map) Type() Type { return m.typ }

// KeySize is the key size in bytes.
func (m *Map) KeySize() uint32 { return m.keySize }

// ValueSize is the value size in bytes (of one CPU's copy for per-CPU maps).
func (m *Map) ValueSize() uint32 { return m.valueSize }

// MaxEntries is the map's capacity as the kernel would report it.
func (m *Map) MaxEntries() uint32 { return m.maxEntries }

// Flags are the map's creation flags (without RDONLY/WRONLY).
func (m *Map) Flags() uint32 { return m.flags }

// NumCPU is the number of per-CPU copies of a per-CPU map's values.
func (m *Map) NumCPU() int { return m.ncpu }

// Frozen reports whether the map was frozen.
func (m *Map) Frozen() bool { return m.d.Frozen.Load() != 0 }

// HasLock reports whether values hold a bpf_spin_lock, and where.
func (m *Map) HasLock() (bool, uint32) { return m.lockOff != noLock, m.lockOff }

// UserValueSize is the size of the value buffer the commands take: the
// value size, or ncpu × round_up(value size, 8) for per-CPU maps.
func (m *Map) UserValueSize() int {
	if m.typ.perCPU() {
		return m.ncpu * int(m.stride)
	}
	return int(m.valueSize)
}

// errorf wraps a sentinel with the map's name and the command.
func (m *Map) errorf(cmd string, err error) error {
	return fmt.Errorf("%s map %q: %w", cmd, m.name, err)
}

func (m *Map) readable() error {
	if !m.canRead {
		return fmt.Errorf("%w: handle is write-only", ErrPermission)
	}
	return nil
}

func (m *Map) writable() error {
	if !m.canWrite {
		return fmt.Errorf("%w: handle is read-only", ErrPermission)
	}
	if m.d.Frozen.Load() != 0 {
		return fmt.Errorf("%w: map is frozen", ErrPermission)
	}
	return nil
}

func (m *Map) checkKey(key []byte) error {
	if m.keySize == 0 && key != nil {
		return fmt.Errorf("%w: the map has no keys (key must be nil)", ErrInvalid)
	}
	if len(key) != int(m.keySize) {
		return fmt.Errorf("%w: key is %d bytes, the map's keys are %d", ErrInvalid, len(key), m.keySize)
	}
	return nil
}

func (m *Map) checkValue(value []byte) error {
	if len(value) != m.UserValueSize() {
		return fmt.Errorf("%w: value buffer is %d bytes, the map needs %d", ErrInvalid, len(value), m.UserValueSize())
	}
	return nil
}

func (m *Map) checkLockFlag(flags uint64) error {
	if flags&FlagLock != 0 && m.lockOff == noLock {
		return fmt.Errorf("%w: BPF_F_LOCK on a map whose value has no bpf_spin_lock", ErrInvalid)
	}
	return nil
}

// valueLock returns the spin lock inside the value stored at p.
func (m *Map) valueLock(p unsafe.Pointer) *lock.SpinLock {
	return (*lock.SpinLock)(unsafe.Add(p, m.lockOff))
}

// Storage is the region memory the map's data takes, in bytes (values,
// buckets, element pool; not the descriptor).
func (m *Map) Storage() uint64 {
	switch o := m.ops.(type) {
	case *hashOps:
		return uint64(m.d.NBuckets)*o.bucketBytes(m) + uint64(m.d.PoolLen)*(uint64(m.d.ElemSize)+o.coldBytes(m))
	case arrayOps:
		return o.slots(m) * uint64(m.stride)
	}
	return 0
}
