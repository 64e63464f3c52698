package maps

import (
	"fmt"

	"github.com/userbpf/userbpf/graph"
)

// Spec describes a map to create. It is plain data; Create validates it in
// the kernel's order and returns the kernel's errno for the first problem.
type Spec struct {
	// Name names the map in its region's directory: 1 to 95 characters from
	// [A-Za-z0-9_.] (the kernel's map_name alphabet; the kernel stops at 15).
	Name       string
	Type       Type
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	// Flags are map_flags (Flag*). FlagRdOnly/FlagWrOnly select the mode of
	// the returned handle, as they select the mode of the kernel's fd.
	Flags uint32
	// MapExtra is map_extra; it must be 0 except for bloom filters, where
	// bits 0-3 are the number of hash functions (0 means 5).
	MapExtra uint64
	// HasLock says the value holds a struct bpf_spin_lock at LockOffset
	// (from the value's BTF, or given by hand).
	HasLock    bool
	LockOffset uint32
	// Graph describes the containers (bpf_rb_root, bpf_list_head) in the
	// value, if any: Graph.Types[0] is the value type, the others the
	// types its containers hold. Values with containers need the lock
	// that guards them (HasLock) and an ARRAY, HASH or LRU_HASH map.
	Graph *graph.Table
	// InnerMap is the template for the inner maps of ARRAY_OF_MAPS and
	// HASH_OF_MAPS (the kernel's inner_map_fd): inner maps must have its
	// type, key and value sizes, flags and (unless it has BPF_F_INNER_MAP)
	// max_entries.
	InnerMap *Map
}

// String describes the spec as the CLI prints it.
func (s *Spec) String() string {
	return fmt.Sprintf("%s %s key %d value %d entries %d flags %#x", s.Name, s.Type, s.KeySize, s.ValueSize, s.MaxEntries, s.Flags)
}

// Kernel limits the per-type checks use.
const (
	kmallocMaxSize  = 4 << 20 // KMALLOC_MAX_SIZE on x86-64
	pcpuMinUnitSize = 32768   // PCPU_MIN_UNIT_SIZE
	htabElemSize    = 48      // sizeof(struct htab_elem) on x86-64
	intMax          = 1<<31 - 1
)

// validateGeneric runs the checks map_create does before the type's own
// (steps 4-7 of the kernel's order).
func (s *Spec) validateGeneric() (mapOps, error) {
	if s.MapExtra != 0 && s.Type != BloomFilter {
		return nil, fmt.Errorf("%w: map_extra %#x is only for bloom filters and arenas", ErrInvalid, s.MapExtra)
	}
	if s.Flags&FlagRdOnly != 0 && s.Flags&FlagWrOnly != 0 {
		return nil, fmt.Errorf("%w: BPF_F_RDONLY and BPF_F_WRONLY together", ErrInvalid)
	}
	ops, ok := registry[s.Type]
	if !ok {
		return nil, fmt.Errorf("%w: map type %d is not implemented", ErrInvalid, uint32(s.Type))
	}
	return ops, nil
}

// validateName runs the kernel's map_name check (after allocation there;
// the order is only observable through which errno wins, and a bad name
// with a bad size reports the size first in both).
func (s *Spec) validateName() error {
	if len(s.Name) == 0 || len(s.Name) > 95 {
		return fmt.Errorf("%w: map name %q must have 1 to 95 characters", ErrInvalid, s.Name)
	}
	for _, c := range []byte(s.Name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return fmt.Errorf("%w: map name %q: character %q is not one of A-Z a-z 0-9 _ .", ErrInvalid, s.Name, c)
		}
	}
	return nil
}

// validateLock checks the value lock's placement and whether the type may
// hold one. Per-CPU maps may not (EOPNOTSUPP, as the kernel); LRU hashes
// may, which the kernel refuses: a value there has one home, so its lock
// means the same thing as in a hash.
func (s *Spec) validateLock() error {
	if !s.HasLock {
		return nil
	}
	if s.Type.perCPU() {
		return fmt.Errorf("%w: a bpf_spin_lock in a per-CPU map's value", ErrOpNotSupported)
	}
	if s.Type != Array && s.Type != Hash && s.Type != LRUHash {
		return fmt.Errorf("%w: a bpf_spin_lock in a %s map's value", ErrOpNotSupported, s.Type)
	}
	if s.LockOffset%4 != 0 || uint64(s.LockOffset)+4 > uint64(s.ValueSize) {
		return fmt.Errorf("%w: bpf_spin_lock at offset %d does not fit a %d-byte value 4-aligned", ErrInvalid, s.LockOffset, s.ValueSize)
	}
	if s.Flags&(FlagRdOnlyProg|FlagWrOnlyProg) != 0 {
		return fmt.Errorf("%w: BPF_F_RDONLY_PROG/WRONLY_PROG on a value with a bpf_spin_lock", ErrAccess)
	}
	return nil
}

// validateGraph checks the value's containers against the map.
func (s *Spec) validateGraph() error {
	if s.Graph == nil {
		return nil
	}
	if s.Type != Array && s.Type != Hash && s.Type != LRUHash {
		return fmt.Errorf("%w: bpf_rb_root/bpf_list_head in a %s map's value", ErrOpNotSupported, s.Type)
	}
	if err := s.Graph.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	vt := &s.Graph.Types[0]
	lock, ok := vt.Lock()
	if vt.Size != s.ValueSize || len(vt.Roots()) == 0 || !ok || !s.HasLock || lock != s.LockOffset {
		return fmt.Errorf("%w: graph value type (%d bytes, lock %d/%v) does not match the map (%d bytes, lock %d/%v)",
			ErrInvalid, vt.Size, lock, ok, s.ValueSize, s.LockOffset, s.HasLock)
	}
	return nil
}

// accessOK is bpf_map_flags_access_ok: not both program restrictions.
func accessOK(flags uint32) bool {
	return flags&(FlagRdOnlyProg|FlagWrOnlyProg) != FlagRdOnlyProg|FlagWrOnlyProg
}
