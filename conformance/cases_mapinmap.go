package conformance

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/maps"
)

// ARRAY_OF_MAPS and HASH_OF_MAPS against the kernel. Values are compared
// by identity (mapinmap_pair.go): a kernel lookup returning the kernel's
// ID of inner map T must be matched by ours returning our ID of T's twin.
//
// Every successful update or delete of a kernel outer map waits for an
// RCU grace period (about 10 ms), so the cases keep those few.

// mimArray is the usual inner map: small enough that a grace period is
// the only cost.
var mimArray = mapSpec{Type: typeArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}

// mimOuterTypes are the outer types, each with its base spec: an array of
// 4 slots, a ZERO_SEED hash of 4 8-byte keys (deterministic order).
var mimOuterTypes = []mapSpec{
	{Type: typeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 4},
	{Type: typeHashOfMaps, KeySize: 8, ValueSize: 4, MaxEntries: 4, Flags: fZeroSeed},
}

// mimVariant is an inner map offered to an outer map whose template is
// another spec, and the errno the kernel gives the update.
type mimVariant struct {
	name string
	s    mapSpec
	want syscall.Errno
}

// mimKind is an inner-map template and the maps offered against it.
type mimKind struct {
	name     string
	tmpl     mapSpec
	variants []mimVariant
}

// mimKinds: bpf_map_meta_equal compares type, key_size, value_size,
// map_flags (RDONLY/WRONLY are fd modes, not stored) and the BTF record
// (spin lock offset); ARRAY alone (array_map_meta_equal) also compares
// max_entries, unless the template has BPF_F_INNER_MAP.
func mimKinds() []mimKind {
	pg := uint32(os.Getpagesize())
	w := func(s mapSpec, f func(s *mapSpec)) mapSpec { f(&s); return s }
	arr := mimArray
	hash := mapSpec{Type: typeHash, KeySize: 4, ValueSize: 8, MaxEntries: 2}
	inner := w(arr, func(s *mapSpec) { s.Flags = fInnerMap })
	arrLock := mapSpec{Type: typeArray, KeySize: 4, ValueSize: 16, MaxEntries: 2, Lock: true, LockOff: 4}
	hashLock := w(arrLock, func(s *mapSpec) { s.Type = typeHash })
	pcpuArr := w(arr, func(s *mapSpec) { s.Type = typePerCPUArray })
	pcpuHash := w(hash, func(s *mapSpec) { s.Type = typePerCPUHash })
	lru := w(hash, func(s *mapSpec) { s.Type = typeLRUHash })
	lruPcpu := w(hash, func(s *mapSpec) { s.Type = typeLRUPerCPUHash })
	lpm := mapSpec{Type: typeLPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 4, Flags: fNoPrealloc}
	queue := mapSpec{Type: typeQueue, ValueSize: 8, MaxEntries: 4}
	stack := w(queue, func(s *mapSpec) { s.Type = typeStack })
	bloom := w(queue, func(s *mapSpec) { s.Type = typeBloomFilter })
	rb := mapSpec{Type: mimRingBuf, MaxEntries: pg}
	urb := w(rb, func(s *mapSpec) { s.Type = mimUserRingBuf })
	maxE := func(s mapSpec, n uint32) mapSpec { s.MaxEntries = n; return s }
	flags := func(s mapSpec, f uint32) mapSpec { s.Flags = f; return s }
	same := func(s mapSpec) mimVariant { return mimVariant{"same_shape", s, 0} }
	return []mimKind{
		{"ARRAY", arr, []mimVariant{
			same(arr),
			{"max_entries_3", maxE(arr, 3), unix.EINVAL},
			{"max_entries_1", maxE(arr, 1), unix.EINVAL},
			{"value_size_16", w(arr, func(s *mapSpec) { s.ValueSize = 16 }), unix.EINVAL},
			{"value_size_4", w(arr, func(s *mapSpec) { s.ValueSize = 4 }), unix.EINVAL},
			{"HASH", hash, unix.EINVAL},
			{"PERCPU_ARRAY", pcpuArr, unix.EINVAL},
			{"RDONLY_PROG", flags(arr, fRdOnlyProg), unix.EINVAL},
			{"WRONLY_PROG", flags(arr, fWrOnlyProg), unix.EINVAL},
			{"MMAPABLE", flags(arr, fMmapable), unix.EINVAL},
			{"INNER_MAP", inner, unix.EINVAL},
			{"NUMA_NODE", flags(arr, fNumaNode), unix.EINVAL},
			{"RDONLY_fd", flags(arr, fRdOnly), 0},
			{"WRONLY_fd", flags(arr, fWrOnly), 0},
			{"lock@0", w(arr, func(s *mapSpec) { s.Lock = true }), unix.EINVAL},
		}},
		{"ARRAY_INNER_MAP", inner, []mimVariant{
			same(inner),
			{"max_entries_64", maxE(inner, 64), 0},
			{"max_entries_1", maxE(inner, 1), 0},
			{"no_INNER_MAP", arr, unix.EINVAL},
			{"no_INNER_MAP_max_entries_64", maxE(arr, 64), unix.EINVAL},
			{"value_size_16", w(inner, func(s *mapSpec) { s.ValueSize = 16 }), unix.EINVAL},
			{"MMAPABLE|INNER_MAP", flags(arr, fMmapable|fInnerMap), unix.EINVAL},
			{"HASH", hash, unix.EINVAL},
		}},
		{"ARRAY_MMAPABLE", flags(arr, fMmapable), []mimVariant{
			same(flags(arr, fMmapable)),
			{"not_MMAPABLE", arr, unix.EINVAL},
			{"max_entries_3", maxE(flags(arr, fMmapable), 3), unix.EINVAL},
		}},
		{"ARRAY_lock@4", arrLock, []mimVariant{
			same(arrLock),
			{"lock@8", w(arrLock, func(s *mapSpec) { s.LockOff = 8 }), unix.EINVAL},
			{"lock@0", w(arrLock, func(s *mapSpec) { s.LockOff = 0 }), unix.EINVAL},
			{"no_lock", w(arrLock, func(s *mapSpec) { s.Lock = false }), unix.EINVAL},
			{"max_entries_3", maxE(arrLock, 3), unix.EINVAL},
			{"HASH_lock@4", hashLock, unix.EINVAL},
		}},
		{"PERCPU_ARRAY", pcpuArr, []mimVariant{
			same(pcpuArr),
			{"max_entries_64", maxE(pcpuArr, 64), 0},
			{"value_size_16", w(pcpuArr, func(s *mapSpec) { s.ValueSize = 16 }), unix.EINVAL},
			{"ARRAY", arr, unix.EINVAL},
		}},
		{"HASH", hash, []mimVariant{
			same(hash),
			{"max_entries_64", maxE(hash, 64), 0},
			{"max_entries_1", maxE(hash, 1), 0},
			{"key_size_8", w(hash, func(s *mapSpec) { s.KeySize = 8 }), unix.EINVAL},
			{"value_size_16", w(hash, func(s *mapSpec) { s.ValueSize = 16 }), unix.EINVAL},
			{"NO_PREALLOC", flags(hash, fNoPrealloc), unix.EINVAL},
			{"ZERO_SEED", flags(hash, fZeroSeed), unix.EINVAL},
			{"NUMA_NODE", flags(hash, fNumaNode), unix.EINVAL},
			{"RDONLY_PROG", flags(hash, fRdOnlyProg), unix.EINVAL},
			{"RDONLY_fd", flags(hash, fRdOnly), 0},
			{"LRU_HASH", lru, unix.EINVAL},
			{"PERCPU_HASH", pcpuHash, unix.EINVAL},
			{"ARRAY", arr, unix.EINVAL},
			{"lock@0", w(hash, func(s *mapSpec) { s.Lock = true }), unix.EINVAL},
		}},
		{"HASH_NO_PREALLOC", flags(hash, fNoPrealloc), []mimVariant{
			same(flags(hash, fNoPrealloc)),
			{"max_entries_64", maxE(flags(hash, fNoPrealloc), 64), 0},
			{"preallocated", hash, unix.EINVAL},
		}},
		{"HASH_lock@4", hashLock, []mimVariant{
			same(hashLock),
			{"max_entries_64", maxE(hashLock, 64), 0},
			{"lock@0", w(hashLock, func(s *mapSpec) { s.LockOff = 0 }), unix.EINVAL},
			{"no_lock", w(hashLock, func(s *mapSpec) { s.Lock = false }), unix.EINVAL},
			{"NO_PREALLOC", flags(hashLock, fNoPrealloc), unix.EINVAL},
		}},
		{"PERCPU_HASH", pcpuHash, []mimVariant{
			same(pcpuHash),
			{"max_entries_64", maxE(pcpuHash, 64), 0},
			{"HASH", hash, unix.EINVAL},
		}},
		{"LRU_HASH", lru, []mimVariant{
			same(lru),
			{"max_entries_64", maxE(lru, 64), 0},
			{"NO_COMMON_LRU", flags(lru, fNoCommonLRU), unix.EINVAL},
			{"LRU_PERCPU_HASH", lruPcpu, unix.EINVAL},
		}},
		{"LRU_PERCPU_HASH", lruPcpu, []mimVariant{
			same(lruPcpu),
			{"max_entries_64", maxE(lruPcpu, 64), 0},
		}},
		{"LPM_TRIE", lpm, []mimVariant{
			same(lpm),
			{"max_entries_64", maxE(lpm, 64), 0},
			{"key_size_12", w(lpm, func(s *mapSpec) { s.KeySize = 12 }), unix.EINVAL},
			{"value_size_4", w(lpm, func(s *mapSpec) { s.ValueSize = 4 }), unix.EINVAL},
		}},
		{"QUEUE", queue, []mimVariant{
			same(queue),
			{"max_entries_64", maxE(queue, 64), 0},
			{"value_size_4", w(queue, func(s *mapSpec) { s.ValueSize = 4 }), unix.EINVAL},
			{"STACK", stack, unix.EINVAL},
		}},
		{"STACK", stack, []mimVariant{
			same(stack),
			{"max_entries_64", maxE(stack, 64), 0},
			{"QUEUE", queue, unix.EINVAL},
		}},
		{"BLOOM_FILTER", bloom, []mimVariant{
			same(bloom),
			{"max_entries_64", maxE(bloom, 64), 0},
			{"map_extra_3", w(bloom, func(s *mapSpec) { s.MapExtra = 3 }), 0},
			{"value_size_4", w(bloom, func(s *mapSpec) { s.ValueSize = 4 }), unix.EINVAL},
		}},
		{"RINGBUF", rb, []mimVariant{
			same(rb),
			{"twice_the_size", maxE(rb, 2*pg), 0},
			{"USER_RINGBUF", urb, unix.EINVAL},
		}},
		{"USER_RINGBUF", urb, []mimVariant{
			same(urb),
			{"twice_the_size", maxE(urb, 2*pg), 0},
			{"RINGBUF", rb, unix.EINVAL},
		}},
	}
}

// wantMIMFlag is the kernel's errno for a valid outer spec with one more
// map_flags bit: fd_array_map_alloc_check refuses RDONLY_PROG/WRONLY_PROG,
// then array_map_alloc_check refuses MMAPABLE/INNER_MAP/PRESERVE_ELEMS on
// anything but its own types; htab_map_alloc_check takes the hash flags.
func wantMIMFlag(t uint32, bit int) syscall.Errno {
	switch f := uint32(1) << bit; f {
	case fNumaNode, fRdOnly, fWrOnly:
		return 0
	case fRdOnlyProg, fWrOnlyProg:
		return wantOr(t == typeHashOfMaps, 0, unix.EINVAL)
	case fNoPrealloc, fZeroSeed:
		return wantOr(t == typeHashOfMaps, 0, unix.EINVAL)
	}
	return unix.EINVAL
}

func mapInMapCases(opts Options) []caseDef {
	var cs []caseDef
	add := func(name string, fn caseFunc) { cs = append(cs, caseDef{"mapinmap/" + name, fn}) }
	for _, b := range mimOuterTypes {
		t := b.Type
		tn := typeName(t)
		b.Flags = 0
		w := func(f func(s *mapSpec)) mapSpec { s := b; f(&s); return s }
		// create compares MAP_CREATE of s with a fresh ARRAY template.
		create := func(name string, s mapSpec, want syscall.Errno) {
			add("create/"+tn+"/"+name, func(c *caseCtx) {
				ts := newTwins(c)
				ts.createOuter(withInner(s, ts.add("tmpl", mimArray)), want)
			})
		}
		// createNoInner compares MAP_CREATE of s without a template.
		createNoInner := func(name string, s mapSpec, want syscall.Errno) {
			add("create/"+tn+"/"+name, func(c *caseCtx) { newTwins(c).createOuter(withoutInner(s), want) })
		}
		create("valid", b, 0)
		create("value_size_8", w(func(s *mapSpec) { s.ValueSize = 8 }), unix.EINVAL)
		create("value_size_0", w(func(s *mapSpec) { s.ValueSize = 0 }), unix.EINVAL)
		create("value_size_1", w(func(s *mapSpec) { s.ValueSize = 1 }), unix.EINVAL)
		create("key_size_0", w(func(s *mapSpec) { s.KeySize = 0 }), unix.EINVAL)
		create("max_entries_0", w(func(s *mapSpec) { s.MaxEntries = 0 }), unix.EINVAL)
		create("map_extra_1", w(func(s *mapSpec) { s.MapExtra = 1 }), unix.EINVAL)
		create("RDONLY|WRONLY", w(func(s *mapSpec) { s.Flags = fRdOnly | fWrOnly }), unix.EINVAL)
		create("RDONLY_PROG|WRONLY_PROG", w(func(s *mapSpec) { s.Flags = fRdOnlyProg | fWrOnlyProg }), unix.EINVAL)
		for bit := 0; bit <= 20; bit++ {
			create("flag/"+createFlagsString(1<<bit), w(func(s *mapSpec) { s.Flags = 1 << bit }), wantMIMFlag(t, bit))
		}
		create("flag/1<<31", w(func(s *mapSpec) { s.Flags = 1 << 31 }), unix.EINVAL)
		createNoInner("no_inner_map", b, unix.EBADF)
		createNoInner("order/value_size_8+no_inner_map", w(func(s *mapSpec) { s.ValueSize = 8 }), unix.EINVAL)
		createNoInner("order/key_size_0+no_inner_map", w(func(s *mapSpec) { s.KeySize = 0 }), unix.EINVAL)
		createNoInner("order/max_entries_0+no_inner_map", w(func(s *mapSpec) { s.MaxEntries = 0 }), unix.EINVAL)
		createNoInner("order/RDONLY_PROG+no_inner_map", w(func(s *mapSpec) { s.Flags = fRdOnlyProg }), wantOr(t == typeHashOfMaps, unix.EBADF, unix.EINVAL))
		// The kernel checks the name after map_alloc, which resolves the inner map fd.
		createNoInner("order/no_inner_map+bad_name", w(func(s *mapSpec) { s.Name = "bad-name" }), unix.EBADF)
		create("bad_name", w(func(s *mapSpec) { s.Name = "bad-name" }), unix.EINVAL)
		// A bpf_spin_lock in the outer map's value: not a type that may hold one.
		create("lock_in_value", w(func(s *mapSpec) { s.Lock, s.LockOff = true, 0 }), unix.EOPNOTSUPP)
		for _, it := range []uint32{typeArrayOfMaps, typeHashOfMaps} {
			add(fmt.Sprintf("create/%s/inner_map_is_%s", tn, typeName(it)), func(c *caseCtx) {
				ts := newTwins(c)
				o := mimOuterTypes[0]
				if it == typeHashOfMaps {
					o = mimOuterTypes[1]
				}
				mid := ts.outer(o, ts.add("tmpl", mimArray))
				ts.createOuter(withInner(b, ts.register("map-in-map", mid.pair)), unix.EINVAL)
			})
		}
		if t == typeArrayOfMaps {
			create("key_size_8", w(func(s *mapSpec) { s.KeySize = 8 }), unix.EINVAL)
			create("key_size_2", w(func(s *mapSpec) { s.KeySize = 2 }), unix.EINVAL)
			create("MMAPABLE|INNER_MAP", w(func(s *mapSpec) { s.Flags = fMmapable | fInnerMap }), unix.EINVAL)
			create("max_entries_1", w(func(s *mapSpec) { s.MaxEntries = 1 }), 0)
		} else {
			create("key_size_1", w(func(s *mapSpec) { s.KeySize = 1 }), 0)
			create("key_size_4", w(func(s *mapSpec) { s.KeySize = 4 }), 0)
			create("key_size_64", w(func(s *mapSpec) { s.KeySize = 64 }), 0)
			create("key_size_512", w(func(s *mapSpec) { s.KeySize = 512 }), 0)
			create("key_size_4MiB", w(func(s *mapSpec) { s.KeySize = 4 << 20; s.MaxEntries = 1 }), unix.E2BIG)
			create("max_entries_2^31+1", w(func(s *mapSpec) { s.MaxEntries = 1<<31 + 1 }), unix.E2BIG)
			create("NO_PREALLOC|ZERO_SEED", w(func(s *mapSpec) { s.Flags = fNoPrealloc | fZeroSeed }), 0)
			create("ZERO_SEED|NUMA_NODE", w(func(s *mapSpec) { s.Flags = fZeroSeed | fNumaNode }), 0)
			create("NO_COMMON_LRU", w(func(s *mapSpec) { s.Flags = fNoCommonLRU }), unix.EINVAL)
		}
	}

	for _, o := range mimOuterTypes {
		tn := typeName(o.Type)
		for _, k := range mimKinds() {
			add("compat/"+tn+"/inner_"+k.name, func(c *caseCtx) { testMIMCompat(c, o, k) })
		}
		add("ops/"+tn+"/basic", func(c *caseCtx) {
			if o.Type == typeArrayOfMaps {
				testArrayOfMaps(c, o)
			} else {
				testHashOfMaps(c, o)
			}
		})
		if o.Type == typeHashOfMaps {
			for _, v := range []mapSpec{
				with(o, func(s *mapSpec) { s.Flags |= fNoPrealloc }),
				with(o, func(s *mapSpec) { s.KeySize, s.Flags = 4, 0 }),
			} {
				add(fmt.Sprintf("ops/%s/key_%d_%s", tn, v.KeySize, createFlagsString(v.Flags)), func(c *caseCtx) { testHashOfMaps(c, v) })
			}
		}
		add("ops/"+tn+"/inner_kinds", func(c *caseCtx) { testMIMInnerKinds(c, o) })
		add("lifetime/"+tn+"/inner_fd_closed", func(c *caseCtx) { testMIMInnerClosed(c, o) })
		add("lifetime/"+tn+"/template_fd_closed", func(c *caseCtx) { testMIMTemplateClosed(c, o) })
		add("lifetime/"+tn+"/shared_inner", func(c *caseCtx) { testMIMShared(c, o) })
		if o.Type == typeArrayOfMaps {
			add("batch/"+tn+"/lookup_empty_slots", func(c *caseCtx) { testArrayOfMapsBatchEmpty(c, o) })
			add("batch/"+tn+"/lookup_update", func(c *caseCtx) { testArrayOfMapsBatch(c, o) })
		} else {
			// With 4-byte keys a key and a bucket cursor have the same size.
			for _, ks := range []uint32{8, 4} {
				s := with(o, func(s *mapSpec) { s.MaxEntries, s.KeySize = 8, ks })
				name := fmt.Sprintf("batch/%s/key_%d/", tn, ks)
				add(name+"lookup", func(c *caseCtx) { testHashOfMapsLookupBatch(c, s) })
				add(name+"update_delete", func(c *caseCtx) { testHashOfMapsUpdateDeleteBatch(c, s) })
				add(name+"lookup_and_delete", func(c *caseCtx) { testHashOfMapsLookupAndDeleteBatch(c, s) })
			}
		}
		add("freeze/"+tn, func(c *caseCtx) { testMIMFreeze(c, o) })
		add("access/"+tn, func(c *caseCtx) { testMIMAccess(c, o) })
		add("deviation/"+tn+"/FlagWaitGrace", func(c *caseCtx) { testMIMWaitGrace(c, o) })
		n := opts.RandomOps / 30
		if n > 100 {
			n = 100
		}
		if n < 20 {
			n = 20
		}
		add("random/"+tn, func(c *caseCtx) { randomMapInMap(c, o, n) })
		if o.Type == typeHashOfMaps {
			add("random/"+tn+"/NO_PREALLOC", func(c *caseCtx) { randomMapInMap(c, with(o, func(s *mapSpec) { s.Flags |= fNoPrealloc }), n) })
		}
	}
	return cs
}

// mimKey is slot i of an outer map: an index, or an i-derived hash key.
func (m *mim) mimKey(i uint32) []byte { return m.key(uint64(i)) }

// testMIMCompat creates the outer map with template k.tmpl, stores the
// template itself in slot 0, then offers variant i to slot i+1 (each in
// its own slot, so that one mismatch does not hide the next).
func testMIMCompat(c *caseCtx, o mapSpec, k mimKind) {
	ts := newTwins(c)
	tmpl := ts.add("template "+k.name, k.tmpl)
	o.MaxEntries = uint32(len(k.variants) + 1)
	m := ts.createOuter(withInner(o, tmpl), 0)
	if m == nil {
		return
	}
	m.tmpl = tmpl
	m.set(m.mimKey(0), tmpl, bpfAny).want(0)
	for i, v := range k.variants {
		in := ts.add(v.name, v.s)
		key := m.mimKey(uint32(i + 1))
		m.set(key, in, bpfAny).want(v.want)
		if o.Type == typeArrayOfMaps {
			m.set(m.mimKey(o.MaxEntries), in, bpfAny).want(unix.E2BIG) // the index before the inner map
		} else {
			m.set(m.mimKey(o.MaxEntries+1), in, bpfExist).want(wantOr(v.want == 0, unix.ENOENT, v.want)) // the inner map before the flags
		}
	}
	m.check("after every variant")
}

// testArrayOfMaps: update, lookup, delete, get_next_key and
// lookup_and_delete on an ARRAY_OF_MAPS of 4 slots.
func testArrayOfMaps(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	a, b := ts.add("A", mimArray), ts.add("B", mimArray)
	wrong := ts.add("HASH", mapSpec{Type: typeHash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	m := ts.outer(o, a)
	m.get(k32(0), 0).want(unix.ENOENT)
	m.next(nil).want(0)
	m.check("empty: every index, every slot ENOENT")
	m.set(k32(0), a, bpfAny).want(0)
	m.get(k32(0), 0).want(0)
	m.set(k32(0), b, bpfAny).want(0) // replaces
	m.get(k32(0), 0).want(0)
	m.set(k32(3), a, bpfAny).want(0)
	m.set(k32(1), a, bpfAny).want(0) // the same inner map in two slots
	m.check("slots 0, 1, 3")
	// Flags must be exactly BPF_ANY; they are checked before the index.
	for _, f := range []uint64{bpfNoExist, bpfExist, 3, bpfFLock, bpfFLock | bpfExist, bpfFCPU, bpfAllCPUs, 1 << 32, ^uint64(0)} {
		m.set(k32(2), a, f).want(unix.EINVAL)
		m.set(k32(0), a, f).want(unix.EINVAL)
		m.set(k32(4), a, f).want(unix.EINVAL)
	}
	m.set(k32(4), a, bpfAny).want(unix.E2BIG)
	m.set(k32(1<<31), a, bpfAny).want(unix.E2BIG)
	m.set(k32(1<<32-1), a, bpfAny).want(unix.E2BIG)
	m.setBad(k32(2), bpfAny).want(unix.EBADF)
	m.setBad(k32(0), bpfAny).want(unix.EBADF) // and the slot keeps its map
	m.setBad(k32(4), bpfAny).want(unix.E2BIG)
	m.setBad(k32(2), bpfNoExist).want(unix.EINVAL)
	m.set(k32(2), wrong, bpfAny).want(unix.EINVAL)
	m.set(k32(0), wrong, bpfAny).want(unix.EINVAL)
	m.set(k32(4), wrong, bpfAny).want(unix.E2BIG)
	m.check("after refused updates")
	m.get(k32(4), 0).want(unix.ENOENT)
	m.get(k32(1<<32-1), 0).want(unix.ENOENT)
	for _, f := range []uint64{bpfFLock, bpfNoExist, bpfExist, bpfFCPU, 1 << 32} {
		m.get(k32(0), f).want(unix.EINVAL)
		m.get(k32(2), f).want(unix.EINVAL)
	}
	m.del(k32(2)).want(unix.ENOENT)
	m.del(k32(4)).want(unix.E2BIG)
	m.del(k32(1<<32 - 1)).want(unix.E2BIG)
	m.del(k32(1)).want(0)
	m.del(k32(1)).want(unix.ENOENT)
	m.get(k32(1), 0).want(unix.ENOENT)
	m.next(k32(1)).want(0) // empty slots are keys too
	m.next(k32(3)).want(unix.ENOENT)
	m.next(k32(4)).want(0)
	m.next(k32(1<<32 - 1)).want(0)
	m.lookupAndDelete(k32(0), 0).want(ENOTSUPP)
	m.lookupAndDelete(k32(2), 0).want(ENOTSUPP)
	m.lookupAndDelete(k32(4), 0).want(ENOTSUPP)
	m.lookupAndDelete(k32(0), bpfFLock).want(unix.EINVAL)
	m.lookupAndDelete(k32(0), bpfNoExist).want(unix.EINVAL)
	m.check("end")
}

// testHashOfMaps: BPF_NOEXIST/BPF_EXIST semantics, full map, in-place
// replacement, deletes and iteration on a HASH_OF_MAPS.
func testHashOfMaps(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	a, b := ts.add("A", mimArray), ts.add("B", mimArray)
	wrong := ts.add("HASH", mapSpec{Type: typeHash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	m := ts.outer(o, a)
	k := m.mimKey
	m.get(k(1), 0).want(unix.ENOENT)
	m.next(nil).want(unix.ENOENT)
	m.next(k(1)).want(unix.ENOENT)
	m.del(k(1)).want(unix.ENOENT)
	m.set(k(1), a, bpfExist).want(unix.ENOENT)
	m.set(k(1), a, bpfNoExist).want(0)
	m.set(k(1), b, bpfNoExist).want(unix.EEXIST)
	m.get(k(1), 0).want(0)
	m.set(k(1), b, bpfExist).want(0) // in place
	m.get(k(1), 0).want(0)
	m.set(k(1), a, bpfAny).want(0)
	m.set(k(2), b, bpfAny).want(0)
	m.check("two keys")
	for _, f := range []uint64{3, bpfFLock, bpfFLock | bpfNoExist, bpfFCPU, bpfAllCPUs, 1 << 32, ^uint64(0)} {
		m.set(k(1), a, f).want(unix.EINVAL)
		m.set(k(9), a, f).want(unix.EINVAL)
	}
	// The inner map fd is resolved and checked before the flags.
	m.setBad(k(1), bpfAny).want(unix.EBADF)
	m.setBad(k(9), bpfExist).want(unix.EBADF)
	m.setBad(k(1), bpfNoExist).want(unix.EBADF)
	m.setBad(k(1), 3).want(unix.EBADF)
	m.setBad(k(1), bpfFLock).want(unix.EINVAL) // BPF_F_LOCK without a lock: refused by the syscall layer first
	m.set(k(1), wrong, bpfNoExist).want(unix.EINVAL)
	m.set(k(9), wrong, bpfExist).want(unix.EINVAL)
	m.set(k(1), wrong, 3).want(unix.EINVAL)
	m.check("after refused updates")
	m.set(k(3), a, bpfAny).want(0)
	m.set(k(4), b, bpfNoExist).want(0)
	m.set(k(5), a, bpfAny).want(unix.E2BIG)
	m.set(k(5), a, bpfNoExist).want(unix.E2BIG)
	m.set(k(5), a, bpfExist).want(unix.ENOENT)
	m.setBad(k(5), bpfAny).want(unix.EBADF)
	m.set(k(4), a, bpfNoExist).want(unix.EEXIST)
	m.set(k(4), a, bpfExist).want(0) // replacing works in a full map
	m.set(k(4), b, bpfAny).want(0)
	m.check("full")
	m.del(k(9)).want(unix.ENOENT)
	m.del(k(2)).want(0)
	m.del(k(2)).want(unix.ENOENT)
	m.set(k(5), a, bpfNoExist).want(0)
	if m.exact {
		m.next(k(9)).want(0) // a missing key restarts at the first
	}
	for _, f := range []uint64{bpfFLock, bpfNoExist, bpfFCPU} {
		m.get(k(1), f).want(unix.EINVAL)
		m.get(k(9), f).want(unix.EINVAL)
	}
	m.lookupAndDelete(k(1), 0).want(ENOTSUPP)
	m.lookupAndDelete(k(9), 0).want(ENOTSUPP)
	m.lookupAndDelete(k(1), bpfFLock).want(unix.EINVAL)
	m.check("end")
}

// testMIMInnerKinds stores ARRAY, HASH and lock-bearing inner maps (each
// kind in its own outer map), replaces and deletes them.
func testMIMInnerKinds(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	for _, s := range []mapSpec{
		mimArray,
		{Type: typeHash, KeySize: 4, ValueSize: 8, MaxEntries: 2},
		{Type: typeArray, KeySize: 4, ValueSize: 16, MaxEntries: 2, Lock: true, LockOff: 4},
		{Type: typeHash, KeySize: 4, ValueSize: 16, MaxEntries: 2, Lock: true, LockOff: 12},
	} {
		name := s.String()
		var ins []*twin
		for i := 0; i < 3; i++ {
			ins = append(ins, ts.add(fmt.Sprintf("%s #%d", name, i), s))
		}
		// The inner maps' own contents, with the lock word ignored.
		for _, in := range ins {
			in.p.update(k32(1), in.p.lockVal(7), bpfAny).want(0)
		}
		m := ts.outer(o, ins[0])
		for i, in := range ins {
			m.set(m.mimKey(uint32(i)), in, bpfAny).want(0)
		}
		m.check(name + ": three slots")
		m.set(m.mimKey(0), ins[2], bpfAny).want(0)
		m.del(m.mimKey(1)).want(0)
		m.check(name + ": replaced and deleted")
		for _, in := range ins {
			in.p.check(name + ": inner map contents")
		}
	}
}

// testMIMInnerClosed: closing an inner map's only fd leaves it alive in
// the outer map (the slot holds a reference); lookups still return it.
func testMIMInnerClosed(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	tmpl, a := ts.add("template", mimArray), ts.add("A", mimArray)
	m := ts.outer(o, tmpl)
	m.set(m.mimKey(0), a, bpfAny).want(0)
	m.set(m.mimKey(1), a, bpfAny).want(0)
	a.p.k.close()
	m.get(m.mimKey(0), 0).want(0)
	m.del(m.mimKey(0)).want(0)
	m.get(m.mimKey(1), 0).want(0)
	m.check("inner fd closed")
}

// testMIMTemplateClosed: the template fd may be closed once the outer map
// exists; its shape still decides which inner maps fit.
func testMIMTemplateClosed(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	tmpl := ts.add("template", mimArray)
	m := ts.outer(o, tmpl)
	tmpl.p.k.close()
	a := ts.add("A", mimArray)
	m.set(m.mimKey(0), a, bpfAny).want(0)
	m.set(m.mimKey(1), ts.add("max_entries_3", with(mimArray, func(s *mapSpec) { s.MaxEntries = 3 })), bpfAny).want(unix.EINVAL)
	m.check("template closed")
}

// testMIMShared: one inner map in several slots of two outer maps, and an
// outer map offered to itself and to its sibling.
func testMIMShared(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	a, b := ts.add("A", mimArray), ts.add("B", mimArray)
	m1, m2 := ts.outer(o, a), ts.outer(o, b)
	t1, t2 := ts.register("outer 1", m1.pair), ts.register("outer 2", m2.pair)
	m1.set(m1.mimKey(0), a, bpfAny).want(0)
	m1.set(m1.mimKey(2), a, bpfAny).want(0)
	m2.set(m2.mimKey(0), a, bpfAny).want(0)
	m2.set(m2.mimKey(1), b, bpfAny).want(0)
	m1.set(m1.mimKey(1), t1, bpfAny).want(unix.EINVAL)
	m1.set(m1.mimKey(1), t2, bpfAny).want(unix.EINVAL)
	m1.del(m1.mimKey(0)).want(0)
	m1.check("outer 1")
	m2.check("outer 2")
}

// mimBatchPair makes an outer map with template A and inner maps A, B
// and a misfit (max_entries 3).
func mimBatchPair(c *caseCtx, o mapSpec) (m *mim, a, b, misfit *twin) {
	ts := newTwins(c)
	a, b = ts.add("A", mimArray), ts.add("B", mimArray)
	misfit = ts.add("max_entries_3", with(mimArray, func(s *mapSpec) { s.MaxEntries = 3 }))
	return ts.outer(o, a), a, b, misfit
}

// lookupBatchSteps walks the map with lookup batches of every size from 1
// to max, each walk from the start until the batch fails (the end).
func (m *mim) lookupBatchSteps(max int) {
	for step := 1; step <= max; step++ {
		var in []byte
		for calls := 0; calls < 2*int(m.s.MaxEntries)+2; calls++ {
			r := m.lookupBatch(false, in, step, 0, 0)
			if r.k != 0 {
				break
			}
			in = r.out
		}
	}
}

// testArrayOfMapsBatchEmpty: generic lookup batches over empty slots (the
// kernel skips them).
func testArrayOfMapsBatchEmpty(c *caseCtx, o mapSpec) {
	m, a, b, _ := mimBatchPair(c, o)
	m.lookupBatch(false, nil, 4, 0, 0).want(unix.ENOENT) // every slot empty
	m.updateBatch([][]byte{k32(0), k32(1), k32(2)}, []*twin{a, b, a}, 0, 0).want(0)
	m.lookupBatch(false, nil, 4, 0, 0).want(unix.ENOENT) // slot 3 empty: 3 copied, then the end
	m.check("after lookups")
}

// testArrayOfMapsBatch: generic update and lookup batches on full slots,
// and the unsupported delete batches.
func testArrayOfMapsBatch(c *caseCtx, o mapSpec) {
	m, a, b, misfit := mimBatchPair(c, o)
	m.lookupBatch(false, nil, 0, 0, 0).want(0)
	m.updateBatch([][]byte{k32(0), k32(1), k32(2), k32(3)}, []*twin{a, b, a, b}, 0, 0).want(0)
	m.lookupBatchSteps(5)
	m.lookupBatch(false, k32(3), 2, 0, 0).want(unix.ENOENT)
	m.lookupBatch(false, k32(4), 2, 0, 0).want(0) // past the end restarts at 0
	m.lookupBatch(false, nil, 4, bpfFLock, 0).want(unix.EINVAL)
	m.lookupBatch(true, nil, 4, 0, 0).want(ENOTSUPP)
	m.deleteBatch(keysOf(k32(0), k32(1)), 0, 0).want(ENOTSUPP)
	m.check("after lookups")
	m.updateBatch([][]byte{k32(0), k32(1), k32(2)}, []*twin{b, misfit, b}, 0, 0).want(unix.EINVAL)
	m.updateBatch([][]byte{k32(0), k32(1)}, []*twin{a, nil}, 0, 0).want(unix.EBADF)
	m.updateBatch([][]byte{k32(2), k32(4)}, []*twin{a, a}, 0, 0).want(unix.E2BIG)
	m.updateBatch([][]byte{k32(0)}, []*twin{a}, bpfNoExist, 0).want(unix.EINVAL)
	m.updateBatch([][]byte{k32(0)}, []*twin{a}, bpfFLock, 0).want(unix.EINVAL)
	m.updateBatch([][]byte{k32(0)}, []*twin{b}, 0, 1).want(0) // batch.flags is not looked at
	m.check("after update batches")
}

// testHashOfMapsLookupBatch: hash lookup batches (u32 bucket cursors)
// return inner map IDs.
func testHashOfMapsLookupBatch(c *caseCtx, o mapSpec) {
	m, a, b, _ := mimBatchPair(c, o)
	k := m.mimKey
	m.lookupBatch(false, nil, 8, 0, 0).want(unix.ENOENT)
	m.lookupBatch(false, nil, 0, 0, 0).want(0)
	m.updateBatch([][]byte{k(1), k(2), k(3), k(4), k(5)}, []*twin{a, b, a, b, a}, 0, 0).want(0)
	m.lookupBatchSteps(6)
	m.lookupBatch(false, k32(8), 8, 0, 0).want(unix.ENOENT) // bucket index past n_buckets
	m.lookupBatch(false, nil, 8, bpfFLock, 0).want(unix.EINVAL)
	m.lookupBatch(false, nil, 8, 0, 1).want(unix.EINVAL)
	m.check("after lookup batches")
}

// testHashOfMapsUpdateDeleteBatch: generic update and delete batches.
func testHashOfMapsUpdateDeleteBatch(c *caseCtx, o mapSpec) {
	m, a, b, misfit := mimBatchPair(c, o)
	k := m.mimKey
	m.updateBatch([][]byte{k(1), k(2), k(3), k(4), k(5)}, []*twin{a, b, a, b, a}, 0, 0).want(0)
	m.deleteBatch(keysOf(k(1), k(2)), 0, 0).want(0)
	m.deleteBatch(keysOf(k(3), k(1)), 0, 0).want(unix.ENOENT)
	m.check("after delete batches")
	m.updateBatch([][]byte{k(6), k(7), k(8)}, []*twin{b, misfit, b}, 0, 0).want(unix.EINVAL)
	m.updateBatch([][]byte{k(8), k(9)}, []*twin{a, nil}, 0, 0).want(unix.EBADF)
	m.updateBatch([][]byte{k(9)}, []*twin{a}, bpfNoExist, 0).want(unix.EINVAL)
	m.updateBatch([][]byte{k(9)}, []*twin{a}, bpfFLock, 0).want(unix.EINVAL)
	m.check("after update batches")
}

// testHashOfMapsLookupAndDeleteBatch: lookup-and-delete batches empty the
// map bucket by bucket.
func testHashOfMapsLookupAndDeleteBatch(c *caseCtx, o mapSpec) {
	m, a, b, _ := mimBatchPair(c, o)
	k := m.mimKey
	m.lookupBatch(true, nil, 8, 0, 0).want(unix.ENOENT)
	m.updateBatch([][]byte{k(1), k(2), k(3), k(4), k(5)}, []*twin{a, b, a, b, a}, 0, 0).want(0)
	var in []byte
	for calls := 0; calls < 12; calls++ {
		r := m.lookupBatch(true, in, 2, 0, 0)
		if r.k != 0 {
			break
		}
		in = r.out
	}
	m.check("after lookup_and_delete batches of 2")
	m.updateBatch([][]byte{k(1), k(2), k(3), k(4)}, []*twin{a, b, a, b}, 0, 0).want(0)
	m.lookupBatch(true, nil, 8, 0, 0).want(unix.ENOENT)
	m.check("emptied")
}

// testMIMFreeze: a frozen outer map refuses writes and keeps its slots.
func testMIMFreeze(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	a, b := ts.add("A", mimArray), ts.add("B", mimArray)
	m := ts.outer(o, a)
	k := m.mimKey
	m.set(k(0), a, bpfAny).want(0)
	m.freeze().want(0)
	m.set(k(0), b, bpfAny).want(unix.EPERM)
	m.set(k(1), b, bpfAny).want(unix.EPERM)
	m.set(k(0), b, 3).want(unix.EPERM)
	m.setBad(k(1), bpfAny).want(unix.EPERM)
	m.del(k(0)).want(unix.EPERM)
	m.del(k(1)).want(unix.EPERM)
	m.get(k(0), 0).want(0)
	m.updateBatch([][]byte{k(1)}, []*twin{b}, 0, 0).want(unix.EPERM)
	m.freeze().want(unix.EPERM)
	m.check("frozen")
}

// testMIMAccess: read-only and write-only handles on an outer map.
func testMIMAccess(c *caseCtx, o mapSpec) {
	ts := newTwins(c)
	a, b := ts.add("A", mimArray), ts.add("B", mimArray)
	m := ts.outer(o, a)
	k := m.mimKey
	m.set(k(0), a, bpfAny).want(0)
	ro := m.reopen(fRdOnly)
	ro.set(k(0), b, bpfAny).want(unix.EPERM)
	ro.setBad(k(1), bpfAny).want(unix.EPERM)
	ro.del(k(0)).want(unix.EPERM)
	ro.get(k(0), 0).want(0)
	ro.next(nil).want(0)
	ro.freeze().want(unix.EPERM)
	ro.lookupAndDelete(k(0), 0)
	wo := m.reopen(fWrOnly)
	wo.get(k(0), 0).want(unix.EPERM)
	wo.next(nil).want(unix.EPERM)
	wo.set(k(1), b, bpfAny).want(0)
	wo.del(k(0)).want(0)
	m.check("written through the write-only handle")
	s := o
	s.Flags |= fRdOnly
	r := ts.outer(s, a)
	r.set(r.mimKey(0), a, bpfAny).want(unix.EPERM)
	r.get(r.mimKey(0), 0).want(unix.ENOENT)
}

// testMIMWaitGrace: FlagWaitGrace (1<<31) is userbpf's own: the kernel
// refuses the bit (and always waits); ours takes it on update and delete
// with the semantics of the other bits.
func testMIMWaitGrace(c *caseCtx, o mapSpec) {
	c.deviation("userbpf's own opt-in flag FlagWaitGrace (1<<31): a map-in-map update or delete with it returns after a grace period; the kernel refuses the bit with EINVAL (it waits on every update and delete instead)")
	ts := newTwins(c)
	a, b := ts.add("A", mimArray), ts.add("B", mimArray)
	m := ts.outer(o, a)
	key := m.mimKey(1)
	fd := func(t *twin) []byte { return k32(uint32(t.p.k.fd)) }
	c.res.Ops += 2
	if e := m.k.update(key, fd(a), maps.FlagWaitGrace); e != unix.EINVAL {
		c.diff("kernel update with flags 1<<31: %s, the deviation expects EINVAL", errName(e))
	}
	if e := kernelElem(cmdMapDeleteElem, m.k.fd, key, nil, maps.FlagWaitGrace); e != unix.EINVAL {
		c.diff("kernel delete with flags 1<<31: %s, the deviation expects EINVAL", errName(e))
	}
	// Ours with the flag against the kernel without it.
	up := func(t *twin, kf, uf uint64) result {
		desc := fmt.Sprintf("update(key=%s, inner map %s, kernel %s, ours %s|FlagWaitGrace)", hexs(key), t.label, elemFlagsString(kf), elemFlagsString(uf&^maps.FlagWaitGrace))
		return m.compare(desc, m.k.update(key, fd(t), kf), m.u.update(key, k32(t.uid), uf))
	}
	up(a, bpfAny, maps.FlagWaitGrace).want(0)
	m.get(key, 0).want(0)
	if o.Type == typeHashOfMaps {
		up(b, bpfNoExist, bpfNoExist|maps.FlagWaitGrace).want(unix.EEXIST)
		up(b, bpfExist, bpfExist|maps.FlagWaitGrace).want(0)
		m.get(key, 0).want(0)
	} else {
		up(b, bpfNoExist, bpfNoExist|maps.FlagWaitGrace).want(unix.EINVAL)
		up(b, bpfAny, maps.FlagWaitGrace).want(0)
	}
	del := func() result {
		return m.compare(fmt.Sprintf("delete(key=%s; ours with FlagWaitGrace)", hexs(key)), m.k.del(key), m.u.res(m.u.m.DeleteFlags(key, maps.FlagWaitGrace)))
	}
	del().want(0)
	m.get(key, 0).want(unix.ENOENT)
	del().want(unix.ENOENT)
	m.check("end")
}

// randomMapInMap applies a random sequence of updates (every flag, the
// fitting inner maps, a misfit and no map at all), lookups, deletes and
// get_next_key to both outer maps, comparing by identity; it stops at the
// first divergence.
func randomMapInMap(c *caseCtx, o mapSpec, n int) {
	ts := newTwins(c)
	ins := []*twin{ts.add("T", mimArray), ts.add("A", mimArray), ts.add("B", mimArray)}
	misfit := ts.add("misfit", with(mimArray, func(s *mapSpec) { s.ValueSize = 16 }))
	m := ts.outer(o, ins[0])
	rng := c.rng
	key := func() []byte {
		if o.Type == typeArrayOfMaps {
			switch rng.Intn(12) {
			case 0:
				return k32(rng.Uint32())
			case 1:
				return k32(o.MaxEntries + uint32(rng.Intn(2)))
			}
			return k32(uint32(rng.Intn(int(o.MaxEntries))))
		}
		return m.mimKey(uint32(rng.Intn(int(2 * o.MaxEntries))))
	}
	flags := func() uint64 {
		switch x := rng.Intn(20); {
		case x < 10:
			return bpfAny
		case x < 14:
			return bpfNoExist
		case x < 18:
			return bpfExist
		}
		return invalidElemFlags[rng.Intn(len(invalidElemFlags))]
	}
	var h history
	for i := 0; i < n; i++ {
		before := len(c.res.Diffs)
		var desc string
		switch x := rng.Intn(100); {
		case x < 40:
			var r result
			switch y := rng.Intn(20); {
			case y == 0:
				r = m.setBad(key(), flags())
			case y == 1:
				r = m.set(key(), misfit, flags())
			default:
				r = m.set(key(), ins[rng.Intn(len(ins))], flags())
			}
			desc = r.desc + " = " + errName(r.k)
		case x < 65:
			r := m.get(key(), 0)
			desc = r.desc + " = " + errName(r.k)
		case x < 85:
			r := m.del(key())
			desc = r.desc + " = " + errName(r.k)
		case x < 95:
			var k []byte
			if rng.Intn(3) > 0 {
				k = key()
			}
			r := m.next(k)
			desc = r.desc + " = " + errName(r.k)
		default:
			desc = "check"
			m.check("check")
		}
		h.add(desc)
		if len(c.res.Diffs) > before {
			c.res.Diffs[before] = fmt.Sprintf("%s (op #%d: %s)", c.res.Diffs[before], i, desc)
			c.diff("replay: Options{Seed: %d, Match: %q} (case seed %d); last ops: %s", c.r.seed, c.res.Name, c.seed, h.String())
			return
		}
	}
	m.check("end of sequence")
}
