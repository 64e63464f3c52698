package conformance

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// allTypes are the map types userbpf implements.
var allTypes = []uint32{typeArray, typePerCPUArray, typeHash, typePerCPUHash, typeLRUHash, typeLRUPerCPUHash}

// baseSpec is a small valid map of type t.
func baseSpec(t uint32) mapSpec {
	return mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 4}
}

// allCases lists every case in order.
func allCases(opts Options) []caseDef {
	var cs []caseDef
	cs = append(cs, createCases()...)
	cs = append(cs, arrayCases()...)
	cs = append(cs, hashCases()...)
	cs = append(cs, moreHashCases()...)
	cs = append(cs, accessCases()...)
	cs = append(cs, lockCases()...)
	cs = append(cs, batchCases()...)
	cs = append(cs, randomCases(opts)...)
	cs = append(cs, keylessCases(opts)...)
	cs = append(cs, lpmCases(opts)...)
	cs = append(cs, mapInMapCases(opts)...)
	return cs
}

// createCase compares one MAP_CREATE; want is the reference's errno.
func createCase(name string, s mapSpec, want syscall.Errno) caseDef {
	return caseDef{name: "create/" + name, fn: func(c *caseCtx) { c.createCompare(s, want) }}
}

// wantFlag is the reference's errno for a valid spec of type t with one
// extra map_flags bit.
func wantFlag(t uint32, bit int) syscall.Errno {
	f := uint32(1) << bit
	switch {
	case f == fRdOnly || f == fWrOnly || f == fRdOnlyProg || f == fWrOnlyProg:
		return 0
	case f == fNumaNode:
		if isPerCPU(t) {
			return unix.EINVAL
		}
		return 0
	case isArray(t):
		if t == typeArray && (f == fMmapable || f == fInnerMap) {
			return 0
		}
		return unix.EINVAL
	case f == fNoPrealloc:
		if isLRU(t) {
			return ENOTSUPP
		}
		return 0
	case f == fNoCommonLRU:
		if isLRU(t) {
			return 0
		}
		return unix.EINVAL
	case f == fZeroSeed:
		return 0
	}
	return unix.EINVAL
}

func createCases() []caseDef {
	var cs []caseDef
	for _, t := range allTypes {
		tn := typeName(t)
		b := baseSpec(t)
		with := func(f func(s *mapSpec)) mapSpec { s := b; f(&s); return s }
		cs = append(cs,
			createCase(tn+"/valid", b, 0),
			createCase(tn+"/key_size_0", with(func(s *mapSpec) { s.KeySize = 0 }), unix.EINVAL),
			createCase(tn+"/value_size_0", with(func(s *mapSpec) { s.ValueSize = 0 }), unix.EINVAL),
			createCase(tn+"/max_entries_0", with(func(s *mapSpec) { s.MaxEntries = 0 }), unix.EINVAL),
			createCase(tn+"/map_extra_1", with(func(s *mapSpec) { s.MapExtra = 1 }), unix.EINVAL),
			createCase(tn+"/map_extra_1<<32", with(func(s *mapSpec) { s.MapExtra = 1 << 32 }), unix.EINVAL),
			createCase(tn+"/RDONLY|WRONLY", with(func(s *mapSpec) { s.Flags = fRdOnly | fWrOnly }), unix.EINVAL),
			createCase(tn+"/RDONLY_PROG|WRONLY_PROG", with(func(s *mapSpec) { s.Flags = fRdOnlyProg | fWrOnlyProg }), unix.EINVAL),
			createCase(tn+"/ZERO_SEED|NUMA_NODE", with(func(s *mapSpec) { s.Flags = fZeroSeed | fNumaNode }), wantOr(!isArray(t) && !isPerCPU(t), 0, unix.EINVAL)),
			// Order: the generic checks (map_extra, RDONLY|WRONLY) come before the type's.
			createCase(tn+"/order/map_extra+key_size_0", with(func(s *mapSpec) { s.MapExtra = 1; s.KeySize = 0 }), unix.EINVAL),
		)
		for bit := 0; bit <= 20; bit++ {
			cs = append(cs, createCase(fmt.Sprintf("%s/flag/%s", tn, createFlagsString(1<<bit)),
				with(func(s *mapSpec) { s.Flags = 1 << bit }), wantFlag(t, bit)))
		}
		cs = append(cs, createCase(tn+"/flag/1<<31", with(func(s *mapSpec) { s.Flags = 1 << 31 }), unix.EINVAL))
		if isArray(t) {
			cs = append(cs,
				createCase(tn+"/key_size_8", with(func(s *mapSpec) { s.KeySize = 8 }), unix.EINVAL),
				createCase(tn+"/key_size_2", with(func(s *mapSpec) { s.KeySize = 2 }), unix.EINVAL),
				createCase(tn+"/value_size_INT_MAX+1", with(func(s *mapSpec) { s.ValueSize = 1 << 31; s.MaxEntries = 1 }), unix.E2BIG),
				createCase(tn+"/value_size_max_u32", with(func(s *mapSpec) { s.ValueSize = 1<<32 - 1; s.MaxEntries = 1 }), unix.E2BIG),
				createCase(tn+"/order/key_size_8+value_INT_MAX+1", with(func(s *mapSpec) { s.KeySize = 8; s.ValueSize = 1 << 31 }), unix.EINVAL),
				createCase(tn+"/order/MMAPABLE+value_INT_MAX+1", with(func(s *mapSpec) { s.Flags = fMmapable; s.ValueSize = 1 << 31 }), wantOr(t == typeArray, unix.E2BIG, unix.EINVAL)),
				createCase(tn+"/MMAPABLE|INNER_MAP", with(func(s *mapSpec) { s.Flags = fMmapable | fInnerMap }), wantOr(t == typeArray, 0, unix.EINVAL)),
				createCase(tn+"/value_size_1", with(func(s *mapSpec) { s.ValueSize = 1 }), 0),
			)
		} else {
			cs = append(cs,
				createCase(tn+"/key_size_1", with(func(s *mapSpec) { s.KeySize = 1 }), 0),
				createCase(tn+"/key_size_3_value_5", with(func(s *mapSpec) { s.KeySize = 3; s.ValueSize = 5 }), 0),
				createCase(tn+"/key_size_512", with(func(s *mapSpec) { s.KeySize = 512 }), 0),
				createCase(tn+"/max_entries_2^31+1", with(func(s *mapSpec) { s.MaxEntries = 1<<31 + 1 }), unix.E2BIG),
				createCase(tn+"/max_entries_max_u32", with(func(s *mapSpec) { s.MaxEntries = 1<<32 - 1 }), unix.E2BIG),
				createCase(tn+"/max_entries_2^27+1", with(func(s *mapSpec) { s.MaxEntries = 1<<27 + 1 }), unix.E2BIG),
				createCase(tn+"/key+value_4MiB", with(func(s *mapSpec) { s.ValueSize = 4 << 20; s.MaxEntries = 1 }), unix.E2BIG),
				createCase(tn+"/value_size_max_u32", with(func(s *mapSpec) { s.ValueSize = 1<<32 - 1; s.MaxEntries = 1 }), unix.E2BIG),
				createCase(tn+"/key_size_max_u32", with(func(s *mapSpec) { s.KeySize = 1<<32 - 1; s.MaxEntries = 1 }), unix.E2BIG),
				createCase(tn+"/MMAPABLE", with(func(s *mapSpec) { s.Flags = fMmapable }), unix.EINVAL),
				createCase(tn+"/order/flags+key_size_0", with(func(s *mapSpec) { s.Flags = fMmapable; s.KeySize = 0 }), unix.EINVAL),
				createCase(tn+"/order/key_size_0+value_too_big", with(func(s *mapSpec) { s.KeySize = 0; s.ValueSize = 1 << 31 }), unix.EINVAL),
			)
			if isLRU(t) {
				cs = append(cs,
					createCase(tn+"/NO_PREALLOC", with(func(s *mapSpec) { s.Flags = fNoPrealloc }), ENOTSUPP),
					createCase(tn+"/order/NO_PREALLOC+key_size_0", with(func(s *mapSpec) { s.Flags = fNoPrealloc; s.KeySize = 0 }), ENOTSUPP),
					createCase(tn+"/order/NO_PREALLOC+value_too_big", with(func(s *mapSpec) { s.Flags = fNoPrealloc; s.ValueSize = 1 << 31 }), ENOTSUPP),
					createCase(tn+"/order/NO_PREALLOC+MMAPABLE", with(func(s *mapSpec) { s.Flags = fNoPrealloc | fMmapable }), unix.EINVAL),
					createCase(tn+"/order/NO_PREALLOC+NUMA", with(func(s *mapSpec) { s.Flags = fNoPrealloc | fNumaNode }), ENOTSUPP),
					createCase(tn+"/order/map_extra+NO_PREALLOC", with(func(s *mapSpec) { s.Flags = fNoPrealloc; s.MapExtra = 1 }), unix.EINVAL),
					createCase(tn+"/order/RDONLY|WRONLY+NO_PREALLOC", with(func(s *mapSpec) { s.Flags = fNoPrealloc | fRdOnly | fWrOnly }), unix.EINVAL),
					createCase(tn+"/NO_COMMON_LRU|NUMA_NODE", with(func(s *mapSpec) { s.Flags = fNoCommonLRU | fNumaNode }), unix.EINVAL),
					createCase(tn+"/NO_COMMON_LRU_max_5", with(func(s *mapSpec) { s.Flags = fNoCommonLRU; s.MaxEntries = 5 }), 0),
					createCase(tn+"/NO_COMMON_LRU_max_1", with(func(s *mapSpec) { s.Flags = fNoCommonLRU; s.MaxEntries = 1 }), 0),
					createCase(tn+"/NO_COMMON_LRU_max_u32", with(func(s *mapSpec) { s.Flags = fNoCommonLRU; s.MaxEntries = 1<<32 - 1 }), unix.E2BIG),
					createCase(tn+"/NO_COMMON_LRU|ZERO_SEED|RDONLY", with(func(s *mapSpec) { s.Flags = fNoCommonLRU | fZeroSeed | fRdOnly }), 0),
				)
			} else {
				cs = append(cs,
					createCase(tn+"/NO_PREALLOC|ZERO_SEED", with(func(s *mapSpec) { s.Flags = fNoPrealloc | fZeroSeed }), 0),
					createCase(tn+"/NO_COMMON_LRU+key_size_0", with(func(s *mapSpec) { s.Flags = fNoCommonLRU; s.KeySize = 0 }), unix.EINVAL),
				)
			}
		}
		if isPerCPU(t) {
			cs = append(cs,
				createCase(tn+"/value_32768", with(func(s *mapSpec) { s.ValueSize = 32768; s.MaxEntries = 1 }), 0),
				createCase(tn+"/value_32761", with(func(s *mapSpec) { s.ValueSize = 32761; s.MaxEntries = 1 }), 0),
				createCase(tn+"/value_32769", with(func(s *mapSpec) { s.ValueSize = 32769; s.MaxEntries = 1 }), unix.E2BIG),
				createCase(tn+"/order/NUMA+value_32769", with(func(s *mapSpec) { s.Flags = fNumaNode; s.ValueSize = 32769 }), unix.EINVAL),
			)
		}
	}
	// The key+value bound of hash maps: key + value >= KMALLOC_MAX_SIZE - sizeof(struct htab_elem) is E2BIG.
	for _, t := range []uint32{typeHash, typeLRUHash} {
		for _, v := range []uint32{4<<20 - 48 - 4 - 1, 4<<20 - 48 - 4, 4<<20 - 56 - 4 - 1, 4<<20 - 56 - 4} {
			want := syscall.Errno(0)
			if 4+v >= 4<<20-48 {
				want = unix.E2BIG
			}
			cs = append(cs, createCase(fmt.Sprintf("%s/key_4_value_%d", typeName(t), v), mapSpec{Type: t, KeySize: 4, ValueSize: v, MaxEntries: 1}, want))
		}
	}
	cs = append(cs,
		createCase("name/bad-name", mapSpec{Type: typeHash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Name: "bad-name"}, unix.EINVAL),
		createCase("name/space", mapSpec{Type: typeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1, Name: "a b"}, unix.EINVAL),
		createCase("name/15_chars_dot_underscore", mapSpec{Type: typeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1, Name: "Ab.9_cdefghijkl"}, 0),
		createCase("type_0", mapSpec{Type: 0, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.EINVAL),
		createCase("type_1000", mapSpec{Type: 1000, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.EINVAL),
		createCase("type_max_u32", mapSpec{Type: 1<<32 - 1, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.EINVAL),
	)
	return cs
}

func wantOr(cond bool, a, b syscall.Errno) syscall.Errno {
	if cond {
		return a
	}
	return b
}
