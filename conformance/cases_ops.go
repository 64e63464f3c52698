package conformance

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// k32 is a 4-byte little-endian key.
func k32(i uint32) []byte { return []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)} }

// badLookupFlags are lookup flags every map without a lock refuses.
var badLookupFlags = []uint64{bpfNoExist, bpfExist, bpfFLock, bpfFCPU, bpfAllCPUs, 1 << 32, bpfFCPU | 1<<32, ^uint64(0)}

// badUpdateFlags are update flags every map without a lock refuses.
var badUpdateFlags = []uint64{3, bpfFLock, bpfFLock | bpfNoExist, bpfFLock | bpfExist, bpfFCPU, bpfAllCPUs, 1 << 32, bpfFCPU | 1<<32, ^uint64(0), 7}

func arrayCases() []caseDef {
	var cs []caseDef
	for _, t := range []uint32{typeArray, typePerCPUArray} {
		tn := typeName(t)
		cs = append(cs,
			caseDef{"array/" + tn + "/test_arraymap", func(c *caseCtx) { testArraymap(c, t) }},
			caseDef{"array/" + tn + "/padding", func(c *caseCtx) {
				// value_size 5: for per-CPU arrays the 3 padding bytes of each CPU's block are copied both ways.
				p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 5, MaxEntries: 3})
				v := p.val(0x1122334455667788)
				p.update(k32(1), v, bpfAny).want(0)
				p.lookup(k32(1), 0)
				p.lookup(k32(0), 0)
				p.update(k32(1), p.val(0), bpfExist).want(0)
				p.lookup(k32(1), 0)
				p.check("after updates")
			}},
			caseDef{"array/" + tn + "/many_keys", func(c *caseCtx) {
				// test_arraymap_percpu_many_keys: write and read back every key.
				p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 2000})
				for i := uint32(0); i < 2000; i++ {
					p.update(k32(i), p.val(uint64(i)+100), bpfAny)
				}
				p.check("2000 keys")
			}},
			caseDef{"array/" + tn + "/flags_in_range_and_out", func(c *caseCtx) {
				// ARRAY update order: flag value, then index range (E2BIG), then NOEXIST (EEXIST).
				p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 12, MaxEntries: 3})
				for _, f := range badUpdateFlags {
					p.update(k32(0), p.val(1), f).want(unix.EINVAL)
					p.update(k32(3), p.val(1), f).want(unix.EINVAL)
				}
				for _, f := range badLookupFlags {
					p.lookup(k32(0), f).want(unix.EINVAL)
					p.lookup(k32(3), f).want(unix.EINVAL)
				}
				p.update(k32(3), p.val(1), bpfNoExist).want(unix.E2BIG)
				p.update(k32(3), p.val(1), bpfExist).want(unix.E2BIG)
				p.update(k32(1<<31), p.val(1), bpfAny).want(unix.E2BIG)
				p.update(k32(2), p.val(1), bpfExist).want(0)
				p.lookup(k32(1<<32-1), 0).want(unix.ENOENT)
				p.lookupAndDelete(k32(0), 0).want(ENOTSUPP)
				p.lookupAndDelete(k32(5), 0).want(ENOTSUPP)
				p.lookupAndDelete(k32(0), bpfNoExist).want(unix.EINVAL)
				p.lookupAndDelete(k32(0), bpfFLock).want(unix.EINVAL)
				p.lookupAndDelete(k32(0), bpfFCPU).want(unix.EINVAL)
				p.del(k32(0)).want(unix.EINVAL)
				p.del(k32(3)).want(unix.EINVAL)
				p.del(k32(1<<32 - 1)).want(unix.EINVAL)
				p.next(k32(1<<32 - 1))
				p.next(k32(3))
				p.next(k32(2)).want(unix.ENOENT)
				p.check("after")
			}},
			caseDef{"array/" + tn + "/max_entries_1", func(c *caseCtx) {
				p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 4, MaxEntries: 1})
				p.next(nil).want(0)
				p.next(k32(0)).want(unix.ENOENT)
				p.next(k32(1)).want(0)
				p.update(k32(1), p.val(1), bpfAny).want(unix.E2BIG)
				p.lookup(k32(1), 0).want(unix.ENOENT)
			}},
			caseDef{"array/" + tn + "/freeze", func(c *caseCtx) { testFreeze(c, mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 4}) }},
		)
	}
	cs = append(cs, caseDef{"array/ARRAY/MMAPABLE_ops", func(c *caseCtx) {
		p := c.create(mapSpec{Type: typeArray, KeySize: 4, ValueSize: 12, MaxEntries: 700, Flags: fMmapable})
		for i := uint32(0); i < 700; i += 7 {
			p.update(k32(i), p.val(uint64(i)), bpfAny)
		}
		p.update(k32(700), p.val(1), bpfAny).want(unix.E2BIG)
		p.check("mmapable")
		p.freeze().want(0)
		p.update(k32(0), p.val(1), bpfAny).want(unix.EPERM)
	}})
	return cs
}

// testArraymap is test_arraymap / test_arraymap_percpu.
func testArraymap(c *caseCtx, t uint32) {
	p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	p.next(nil).want(0)
	p.lookup(k32(0), 0).want(0) // zero-initialised on every CPU
	p.update(k32(1), p.val(1234), bpfAny).want(0)
	p.update(k32(1), p.val(1), bpfNoExist).want(unix.EEXIST)
	p.lookup(k32(1), 0).want(0)
	p.lookup(k32(0), 0).want(0)
	p.update(k32(0), p.val(1), bpfExist).want(0)
	p.update(k32(2), p.val(1), bpfExist).want(unix.E2BIG)
	p.update(k32(2), p.val(1), bpfAny).want(unix.E2BIG)
	p.lookup(k32(2), 0).want(unix.ENOENT)
	p.next(nil).want(0)
	p.next(k32(2)).want(0)
	p.next(k32(0)).want(0)
	p.next(k32(1)).want(unix.ENOENT)
	p.del(k32(0)).want(unix.EINVAL)
	p.del(k32(2)).want(unix.EINVAL)
	p.update(k32(0), p.val(5), bpfNoExist|bpfFLock).want(unix.EINVAL)
	p.check("end")
}

// testFreeze freezes a populated map and tries every command.
func testFreeze(c *caseCtx, s mapSpec) {
	p := c.create(s)
	p.update(k32(1), p.val(1), bpfAny).want(0)
	p.update(k32(2), p.val(2), bpfAny).want(0)
	p.freeze().want(0)
	p.update(k32(1), p.val(3), bpfAny).want(unix.EPERM)
	p.update(k32(3), p.val(3), bpfNoExist).want(unix.EPERM)
	p.update(k32(1), p.val(3), 3).want(unix.EPERM) // permission before flags
	p.update(k32(1), p.val(3), bpfFLock).want(unix.EPERM)
	p.del(k32(1)).want(unix.EPERM)
	p.del(k32(100)).want(unix.EPERM)
	p.lookupAndDelete(k32(1), 0).want(unix.EPERM)
	p.lookupAndDelete(k32(1), bpfNoExist).want(unix.EINVAL) // flags before permission
	p.lookup(k32(1), 0).want(0)
	p.lookup(k32(1), bpfFLock).want(unix.EINVAL)
	p.next(nil).want(0)
	// A second freeze is EPERM, not EBUSY as the semantics reference says:
	// map_freeze checks map_get_sys_perms(), which drops FMODE_CAN_WRITE
	// for a frozen map, before it looks at map->frozen.
	p.freeze().want(unix.EPERM)
	p.check("frozen")
	// A second handle sees the frozen map too.
	q := p.reopen(0)
	q.update(k32(1), p.val(3), bpfAny).want(unix.EPERM)
	q.freeze().want(unix.EPERM)
}

func hashTypes() []uint32 { return []uint32{typeHash, typePerCPUHash, typeLRUHash, typeLRUPerCPUHash} }

// hashVariants are the creation flags each hash case runs with.
func hashVariants(t uint32) []uint32 {
	if isLRU(t) {
		return []uint32{fZeroSeed, fZeroSeed | fNoCommonLRU}
	}
	return []uint32{fZeroSeed, fZeroSeed | fNoPrealloc}
}

func variantName(f uint32) string { return createFlagsString(f &^ fZeroSeed) }

func hashCases() []caseDef {
	var cs []caseDef
	for _, t := range hashTypes() {
		tn := typeName(t)
		for _, fl := range hashVariants(t) {
			pre := fmt.Sprintf("hash/%s/%s/", tn, variantName(fl))
			cs = append(cs,
				caseDef{pre + "test_hashmap", func(c *caseCtx) { testHashmap(c, t, fl) }},
				caseDef{pre + "bad_flags", func(c *caseCtx) { testHashBadFlags(c, t, fl) }},
				caseDef{pre + "zero_seed_order", func(c *caseCtx) { testZeroSeedOrder(c, t, fl) }},
				caseDef{pre + "delete_during_iteration", func(c *caseCtx) { testDeleteDuringIteration(c, t, fl) }},
				caseDef{pre + "hashmap_walk", func(c *caseCtx) { testHashmapWalk(c, t, fl) }},
				caseDef{pre + "freeze", func(c *caseCtx) {
					testFreeze(c, mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 64, Flags: fl})
				}},
			)
			if isLRU(t) {
				cs = append(cs, caseDef{pre + "lru_full", func(c *caseCtx) { testLRUFull(c, t, fl) }})
			} else {
				cs = append(cs, caseDef{pre + "full", func(c *caseCtx) { testHashFull(c, t, fl) }})
			}
			if isPerCPU(t) {
				cs = append(cs, caseDef{pre + "percpu_padding", func(c *caseCtx) { testPerCPUHashPadding(c, t, fl) }})
			}
		}
		cs = append(cs, caseDef{"hash/" + tn + "/random_seed_sets", func(c *caseCtx) {
			// Without ZERO_SEED only the key sets can be compared.
			p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 128})
			for i := uint32(0); i < 40; i++ {
				p.update(k32(i*7919), p.val(uint64(i)), bpfAny).want(0)
			}
			p.check("40 keys")
			p.del(k32(7919)).want(0)
			p.check("after delete")
		}})
	}
	return cs
}

// lruRoom returns max for non-LRU maps; for LRU maps, a max_entries with
// room enough that keys inserts evict nothing on either side (each CPU's
// list or local free list holds a share of the nodes).
func lruRoom(c *caseCtx, t, max, keys uint32) uint32 {
	if !isLRU(t) {
		return max
	}
	return 4 * keys * uint32(possibleCPUs())
}

// testHashmap is test_hashmap / test_hashmap_percpu (8-byte keys; max 2
// for non-LRU maps; LRU maps get room so that nothing is evicted).
func testHashmap(c *caseCtx, t, flags uint32) {
	max := uint32(2)
	if isLRU(t) {
		max = 256
	}
	p := c.create(mapSpec{Type: t, KeySize: 8, ValueSize: 8, MaxEntries: max, Flags: flags})
	key := func(i uint64) []byte { return p.key(i) }
	p.next(nil).want(unix.ENOENT)
	p.next(key(1)).want(unix.ENOENT)
	p.update(key(1), p.val(1234), bpfAny).want(0)
	p.update(key(1), p.val(1), bpfNoExist).want(unix.EEXIST)
	p.update(key(1), p.val(1), ^uint64(0)).want(unix.EINVAL)
	p.lookup(key(1), 0).want(0)
	p.update(key(2), p.val(1234), bpfAny).want(0)
	p.lookupAndDelete(key(2), 0).want(0)
	p.lookup(key(2), 0).want(unix.ENOENT)
	p.lookupAndDelete(key(2), 0).want(unix.ENOENT)
	p.update(key(2), p.val(1234), bpfExist).want(unix.ENOENT)
	p.update(key(2), p.val(5678), bpfNoExist).want(0)
	p.lookup(key(2), 0).want(0)
	if !isLRU(t) {
		p.update(key(0), p.val(0), bpfNoExist).want(unix.E2BIG)
		p.update(key(0), p.val(0), bpfAny).want(unix.E2BIG)
		p.update(key(0), p.val(0), bpfExist).want(unix.ENOENT)
	}
	p.update(key(1), p.val(1), bpfExist).want(0)
	p.update(key(2), p.val(2), bpfAny).want(0)
	p.update(key(1), p.val(11), bpfAny).want(0)
	p.del(key(0)).want(unix.ENOENT)
	p.next(nil).want(0)
	p.next(key(0)).want(0)
	first := p.next(nil).val
	second := p.next(first).val
	p.next(second).want(unix.ENOENT)
	p.check("two keys")
	p.del(key(1)).want(0)
	p.del(key(2)).want(0)
	p.del(key(2)).want(unix.ENOENT)
	p.next(nil).want(unix.ENOENT)
	p.next(key(1)).want(unix.ENOENT)
	p.check("empty")
}

func testHashBadFlags(c *caseCtx, t, flags uint32) {
	p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 12, MaxEntries: 16, Flags: flags})
	p.update(k32(1), p.val(1), bpfAny).want(0)
	for _, f := range badUpdateFlags {
		p.update(k32(1), p.val(2), f).want(unix.EINVAL)
		p.update(k32(2), p.val(2), f).want(unix.EINVAL)
	}
	for _, f := range badLookupFlags {
		p.lookup(k32(1), f).want(unix.EINVAL)
		p.lookup(k32(2), f).want(unix.EINVAL)
		p.lookupAndDelete(k32(1), f).want(unix.EINVAL)
		p.lookupAndDelete(k32(2), f).want(unix.EINVAL)
	}
	p.check("after bad flags")
	p.lookupAndDelete(k32(1), 0).want(0)
	p.check("after lookup_and_delete")
}

// testZeroSeedOrder checks the bucket order of a ZERO_SEED map for several
// key sizes (jhash2 for multiples of 4, byte jhash otherwise), and that
// replacing a key moves it to its bucket's head (except in-place per-CPU
// updates).
func testZeroSeedOrder(c *caseCtx, t, flags uint32) {
	for _, ks := range []uint32{1, 2, 3, 4, 5, 7, 8, 12, 13, 16, 33, 64} {
		p := c.create(mapSpec{Type: t, KeySize: ks, ValueSize: 8, MaxEntries: lruRoom(c, t, 64, 40), Flags: flags})
		keys := make([][]byte, 40)
		for i := range keys {
			k := make([]byte, ks)
			for j := range k {
				k[j] = byte(c.rng.Intn(256))
			}
			keys[i] = k
			p.update(k, p.val(uint64(i)), bpfAny)
		}
		p.check(fmt.Sprintf("key size %d after 40 inserts", ks))
		for i := 0; i < len(keys); i += 3 {
			p.update(keys[i], p.val(uint64(1000+i)), bpfAny)
		}
		for i := 1; i < len(keys); i += 5 {
			p.update(keys[i], p.val(uint64(2000+i)), bpfExist)
		}
		p.check(fmt.Sprintf("key size %d after replacing", ks))
		for i := 2; i < len(keys); i += 4 {
			p.del(keys[i])
		}
		p.check(fmt.Sprintf("key size %d after deletes", ks))
		for i := 2; i < len(keys); i += 8 {
			p.update(keys[i], p.val(uint64(3000+i)), bpfNoExist)
		}
		p.check(fmt.Sprintf("key size %d after reinserts", ks))
	}
}

// testDeleteDuringIteration: deleting the cursor before asking for its
// successor restarts the walk; fetch-next-then-delete visits every key.
func testDeleteDuringIteration(c *caseCtx, t, flags uint32) {
	p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: lruRoom(c, t, 32, 20), Flags: flags})
	for i := uint32(0); i < 20; i++ {
		p.update(k32(i*3), p.val(uint64(i)), bpfAny)
	}
	// Fetch next, then delete the current key.
	r := p.next(nil)
	for steps := 0; r.k == 0 && steps < 40; steps++ {
		r2 := p.next(r.val)
		p.del(r.val).want(0)
		r = r2
	}
	p.check("emptied by fetch-next-then-delete")
	for i := uint32(0); i < 20; i++ {
		p.update(k32(i*3), p.val(uint64(i)), bpfAny)
	}
	// Delete the cursor first, then ask for its successor: restarts from the first key.
	r = p.next(nil)
	for steps := 0; r.k == 0 && steps < 60; steps++ {
		p.del(r.val)
		r = p.next(r.val)
	}
	p.check("emptied by delete-then-next")
	for i := uint32(0); i < 20; i++ {
		p.update(k32(i*5), p.val(uint64(i)), bpfAny)
	}
	// Delete keys other than the cursor while walking.
	r = p.next(nil)
	for steps := 0; r.k == 0 && steps < 60; steps++ {
		p.del(k32(uint32(steps) * 10))
		r = p.next(r.val)
	}
	p.check("after deleting others while walking")
}

// testHashmapWalk is test_hashmap_walk: a walk that EXIST-updates each
// key while iterating visits every key once.
func testHashmapWalk(c *caseCtx, t, flags uint32) {
	n := uint32(2000)
	p := c.create(mapSpec{Type: t, KeySize: 8, ValueSize: 8, MaxEntries: lruRoom(c, t, n, n), Flags: flags})
	for i := uint32(0); i < n; i++ {
		p.update(p.key(uint64(i)), p.val(uint64(i)), bpfNoExist)
	}
	keys := p.walk("filled")
	if len(keys) != int(n) {
		c.diff("walk visited %d keys, want %d", len(keys), n)
	}
	// Second walk: fetch the next key, then look up and EXIST-update the
	// current one (an update moves the key to its bucket's head, so
	// fetching after it could revisit keys).
	cur := p.next(nil).val
	visited := 0
	for more := true; more && visited < 3*int(n); visited++ {
		r := p.next(cur)
		more = r.k == 0
		v := p.lookup(cur, 0).val
		v[0]++
		p.update(cur, v, bpfExist).want(0)
		cur = r.val
	}
	if visited != int(n) {
		c.diff("walk with EXIST updates visited %d keys on the kernel, %d stored", visited, n)
	}
	p.check("after incrementing walk")
}

// testHashFull: a full (non-LRU) hash refuses new keys with E2BIG and
// replaces existing ones, many times over (more than any spare elements).
func testHashFull(c *caseCtx, t, flags uint32) {
	p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 16, MaxEntries: 4, Flags: flags})
	for i := uint32(0); i < 4; i++ {
		p.update(k32(i), p.val(uint64(i)), bpfNoExist).want(0)
	}
	p.update(k32(4), p.val(4), bpfAny).want(unix.E2BIG)
	p.update(k32(4), p.val(4), bpfNoExist).want(unix.E2BIG)
	p.update(k32(4), p.val(4), bpfExist).want(unix.ENOENT)
	p.update(k32(0), p.val(4), bpfNoExist).want(unix.EEXIST)
	for i := 0; i < 200; i++ {
		p.update(k32(uint32(i%4)), p.val(uint64(100+i)), uint64(i%2)*bpfExist).want(0)
	}
	p.check("full after 200 replacements")
	p.del(k32(2)).want(0)
	p.update(k32(5), p.val(5), bpfNoExist).want(0)
	p.update(k32(6), p.val(6), bpfAny).want(unix.E2BIG)
	p.lookupAndDelete(k32(5), 0).want(0)
	p.update(k32(6), p.val(6), bpfAny).want(0)
	p.update(k32(7), p.val(7), bpfAny).want(unix.E2BIG)
	p.check("full again")
}

// testLRUFull: an LRU map never reports E2BIG; it evicts. Victims differ by
// design, so only invariants are compared: no E2BIG, at most max_entries
// keys, the key just written is present with its value.
func testLRUFull(c *caseCtx, t, flags uint32) {
	s := mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 16, Flags: flags}
	p := c.create(s)
	max := int(p.u.m.MaxEntries())
	for i := uint32(0); i < 300; i++ {
		f := uint64(bpfAny)
		if i%3 == 1 {
			f = bpfNoExist
		}
		v := p.val(uint64(i))
		ke, ue := p.k.update(k32(i), v, f), p.u.update(k32(i), v, f)
		c.res.Ops++
		if ke != 0 || ue != 0 {
			c.diff("update(key %d, %s) of a new key into a full LRU map: kernel %s, ours %s (both must evict)", i, elemFlagsString(f), errName(ke), errName(ue))
		}
		for side, tg := range []target{p.k, p.u} {
			out := make([]byte, p.vsize())
			if e := tg.lookup(k32(i), out, 0); e != 0 || string(out) != string(v) {
				c.diff("%s: key %d just written is missing or wrong: %s", []string{"kernel", "ours"}[side], i, errName(e))
			}
		}
	}
	kk, _, _ := walkOne(p.k, 4, 4*max)
	uk, _, _ := walkOne(p.u, 4, 4*max)
	if len(kk) > max || len(uk) > max || len(uk) == 0 {
		c.diff("LRU holds kernel %d, ours %d keys; max_entries %d", len(kk), len(uk), max)
	}
}

// testPerCPUHashPadding: a per-CPU hash value is ncpu blocks of
// round_up(value_size, 8); what the padding reads back is compared.
func testPerCPUHashPadding(c *caseCtx, t, flags uint32) {
	p := c.create(mapSpec{Type: t, KeySize: 4, ValueSize: 5, MaxEntries: 8, Flags: flags})
	v := p.val(0xdeadbeefcafe)
	p.update(k32(1), v, bpfAny).want(0)
	p.lookup(k32(1), 0)
	p.update(k32(1), p.val(7), bpfExist).want(0)
	p.lookup(k32(1), 0)
	p.update(k32(2), p.val(9), bpfNoExist).want(0)
	p.lookup(k32(2), 0)
	p.lookupAndDelete(k32(2), 0).want(0)
	p.update(k32(3), p.val(11), bpfAny).want(0)
	p.lookup(k32(3), 0)
	p.check("padding")
}

// moreHashCases are the remaining test_maps.c rows: test_map_large,
// test_hashmap_sizes and test_hashmap_percpu.
func moreHashCases() []caseDef {
	return []caseDef{
		{"hash/HASH/test_map_large", func(c *caseCtx) {
			// struct { int a; char b[4096]; long long c; } keys (4112 bytes);
			// 512 entries instead of 32768 to stay fast.
			const n = 512
			p := c.create(mapSpec{Type: typeHash, KeySize: 4112, ValueSize: 8, MaxEntries: n, Flags: fZeroSeed})
			key := func(i int) []byte {
				k := make([]byte, 4112)
				copy(k[0:], k32(uint32(i)))
				copy(k[4:], fmt.Sprintf("hello key %d", i))
				copy(k[4104:], k32(uint32(i)))
				return k
			}
			for i := 0; i < n; i++ {
				p.update(key(i), p.val(uint64(i)), bpfNoExist).want(0)
			}
			p.update(key(n), p.val(n), bpfNoExist).want(unix.E2BIG)
			keys := p.walk("full")
			if len(keys) != n {
				c.diff("walk visited %d keys, want %d", len(keys), n)
			}
			p.lookup(key(3), 0).want(0)
			k := key(3)
			k[4104] = 99 // the last field differs
			p.lookup(k, 0).want(unix.ENOENT)
		}},
		{"hash/HASH/test_hashmap_sizes", func(c *caseCtx) {
			for ks := uint32(1); ks <= 512; ks *= 2 {
				for vs := uint32(1); vs <= 1<<16; vs *= 4 {
					p, ke, ue, uerr := c.tryCreate(mapSpec{Type: typeHash, KeySize: ks, ValueSize: vs, MaxEntries: 2})
					if ke != ue {
						c.diff("create HASH key %d value %d: kernel %s, ours %s%s", ks, vs, errName(ke), errName(ue), ourMsg(uerr))
					}
					if p == nil {
						continue
					}
					p.update(p.key(1), p.val(uint64(ks*vs)), bpfAny).want(0)
					p.lookup(p.key(1), 0).want(0)
					p.k.close()
				}
			}
		}},
		{"hash/PERCPU_HASH/test_hashmap_percpu", func(c *caseCtx) {
			p := c.create(mapSpec{Type: typePerCPUHash, KeySize: 8, ValueSize: 8, MaxEntries: 2})
			val := func(base uint64) []byte {
				v := make([]byte, p.vsize())
				for cpu := 0; cpu < p.ncpu; cpu++ {
					copy(v[cpu*8:], p.key(base+uint64(cpu))) // slot i = base+i as a u64
				}
				return v
			}
			p.update(p.key(1), val(100), bpfAny).want(0)
			p.update(p.key(1), val(100), bpfNoExist).want(unix.EEXIST)
			p.lookup(p.key(1), 0).want(0)
			p.update(p.key(2), val(200), bpfAny).want(0)
			p.lookupAndDelete(p.key(2), 0).want(0)
			p.update(p.key(2), val(300), bpfExist).want(unix.ENOENT)
			p.update(p.key(2), val(300), bpfNoExist).want(0)
			p.update(p.key(0), val(400), bpfNoExist).want(unix.E2BIG)
			p.update(p.key(1), val(500), bpfExist).want(0)
			p.check("two keys, every CPU's value")
		}},
	}
}
