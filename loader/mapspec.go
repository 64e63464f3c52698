package loader

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/maps"
)

// mapTypes maps cilium/ebpf's map types to the ones the region implements
// (both are numbered as the kernel's enum bpf_map_type).
var mapTypes = map[ebpf.MapType]maps.Type{
	ebpf.Hash:         maps.Hash,
	ebpf.Array:        maps.Array,
	ebpf.PerCPUHash:   maps.PerCPUHash,
	ebpf.PerCPUArray:  maps.PerCPUArray,
	ebpf.LRUHash:      maps.LRUHash,
	ebpf.LRUCPUHash:   maps.LRUPerCPUHash,
	ebpf.LPMTrie:      maps.LPMTrie,
	ebpf.ArrayOfMaps:  maps.ArrayOfMaps,
	ebpf.HashOfMaps:   maps.HashOfMaps,
	ebpf.Queue:        maps.Queue,
	ebpf.Stack:        maps.Stack,
	ebpf.RingBuf:      maps.RingBuf,
	ebpf.UserRingbuf:  maps.UserRingBuf,
	ebpf.BloomFilter:  maps.BloomFilter,
	ebpf.ProgramArray: maps.ProgArray,
}

// MapType converts a cilium/ebpf map type; ok is false for types the
// region does not implement.
func MapType(t ebpf.MapType) (maps.Type, bool) {
	mt, ok := mapTypes[t]
	return mt, ok
}

// maxNameLen is the region's limit on map names.
const maxNameLen = 95

func convertMap(cs *ebpf.CollectionSpec, objName string, ms *ebpf.MapSpec, obj, prefix string) (*MapSpec, error) {
	if objName == ".kconfig" {
		return nil, fmt.Errorf("%w: extern __kconfig variables (there is no kernel config to read)", ErrUnsupported)
	}
	out := &MapSpec{ObjName: objName}
	regionName := prefix + sanitize(objName)
	if isDataSection(objName) {
		out.GlobalData = true
		regionName = prefix + obj + sanitize(objName)
		data, err := sectionData(cs, objName, ms)
		if err != nil {
			return nil, err
		}
		out.Data = data
	}
	s, err := specOf(ms, regionName)
	if err != nil {
		return nil, err
	}
	tb, err := valueGraph(cs.Types, ms.Value)
	if err != nil {
		return nil, fmt.Errorf("value graph fields: %w", err)
	}
	s.Graph = tb
	out.Spec = s
	out.KeyType, out.ValueType = ms.Key, ms.Value
	out.ReadOnly = ms.Flags&maps.FlagRdOnlyProg != 0
	out.Freeze = out.GlobalData && out.ReadOnly
	if out.GlobalData && (s.Type != maps.Array || s.MaxEntries != 1 || s.KeySize != 4) {
		return nil, fmt.Errorf("data section map is %s with %d entries, want a single-entry array", s.Type, s.MaxEntries)
	}
	if s.Type == maps.ArrayOfMaps || s.Type == maps.HashOfMaps {
		if ms.InnerMap == nil {
			return nil, fmt.Errorf("%s without an inner map template (declare values with __array(values, struct inner))", s.Type)
		}
		if ms.InnerMap == ms || ms.InnerMap.InnerMap != nil {
			return nil, fmt.Errorf("%w: an inner map that is itself a map-in-map", ErrUnsupported)
		}
		is, err := specOf(ms.InnerMap, regionName+".inner")
		if err != nil {
			return nil, fmt.Errorf("inner map: %w", err)
		}
		out.Inner = &MapSpec{ObjName: objName + ".inner", Spec: is, isTemplate: true,
			ReadOnly: ms.InnerMap.Flags&maps.FlagRdOnlyProg != 0}
	} else if ms.InnerMap != nil {
		return nil, fmt.Errorf("a %s has no inner map", s.Type)
	}
	if !out.GlobalData && len(ms.Contents) > 0 {
		if out.Inner == nil {
			return nil, fmt.Errorf("%w: static contents of a %s", ErrUnsupported, s.Type)
		}
		out.InnerMaps = map[uint32]string{}
		for _, kv := range ms.Contents {
			k, ok1 := kv.Key.(uint32)
			v, ok2 := kv.Value.(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%w: .values entry %v: %v (want an index and a map)", ErrUnsupported, kv.Key, kv.Value)
			}
			out.InnerMaps[k] = v
		}
	}
	return out, nil
}

// specOf converts a cilium/ebpf map spec to a region map spec named name.
func specOf(ms *ebpf.MapSpec, name string) (maps.Spec, error) {
	t, ok := MapType(ms.Type)
	if !ok {
		return maps.Spec{}, fmt.Errorf("%w: map type %s", ErrUnsupported, ms.Type)
	}
	if len(name) > maxNameLen {
		return maps.Spec{}, fmt.Errorf("region name %q is longer than %d characters", name, maxNameLen)
	}
	s := maps.Spec{Name: name, Type: t, KeySize: ms.KeySize, ValueSize: ms.ValueSize,
		MaxEntries: ms.MaxEntries, Flags: ms.Flags, MapExtra: ms.MapExtra}
	if t == maps.ArrayOfMaps || t == maps.HashOfMaps {
		s.ValueSize = 4 // an inner map's ID
	}
	if ms.Value != nil {
		off, found, err := FindSpinLock(ms.Value)
		if err != nil {
			return maps.Spec{}, err
		}
		s.HasLock, s.LockOffset = found, off
	}
	return s, nil
}

// maxBTFDepth bounds the walk through nested BTF types.
const maxBTFDepth = 32

// FindSpinLock finds the struct bpf_spin_lock in a map value's BTF type,
// in the value itself or in structs and unions nested in it (a data
// section's variables too): its offset, whether there is one, and an
// error if there are several or one sits in an array.
func FindSpinLock(t btf.Type) (off uint32, found bool, err error) {
	var offs []uint32
	if err := walkLocks(t, 0, 0, false, &offs); err != nil {
		return 0, false, err
	}
	switch len(offs) {
	case 0:
		return 0, false, nil
	case 1:
		return offs[0], true, nil
	default:
		return 0, false, fmt.Errorf("the value holds %d bpf_spin_locks (at %v); only one is allowed", len(offs), offs)
	}
}

func walkLocks(t btf.Type, base uint64, depth int, inArray bool, offs *[]uint32) error {
	if depth > maxBTFDepth {
		return fmt.Errorf("value type nests deeper than %d levels", maxBTFDepth)
	}
	t = btf.UnderlyingType(t)
	switch v := t.(type) {
	case *btf.Struct:
		if v.Name == "bpf_spin_lock" {
			if inArray {
				return fmt.Errorf("a bpf_spin_lock in an array (at offset %d)", base)
			}
			if base > 1<<32-1 {
				return fmt.Errorf("bpf_spin_lock at offset %d", base)
			}
			*offs = append(*offs, uint32(base))
			return nil
		}
		for _, m := range v.Members {
			if err := walkLocks(m.Type, base+uint64(m.Offset.Bytes()), depth+1, inArray, offs); err != nil {
				return err
			}
		}
	case *btf.Union:
		for _, m := range v.Members {
			if err := walkLocks(m.Type, base+uint64(m.Offset.Bytes()), depth+1, inArray, offs); err != nil {
				return err
			}
		}
	case *btf.Array:
		return walkLocks(v.Type, base, depth+1, true, offs)
	case *btf.Datasec:
		for _, vs := range v.Vars {
			if err := walkLocks(vs.Type, base+uint64(vs.Offset), depth+1, inArray, offs); err != nil {
				return err
			}
		}
	case *btf.Var:
		return walkLocks(v.Type, base, depth+1, inArray, offs)
	}
	return nil
}
