package conformance

import (
	"bytes"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Key-less map types: QUEUE, STACK (push/peek/pop) and BLOOM_FILTER
// (push/test). Every command is called with key NULL, on both sides, as
// test_maps.c's test_queuemap / test_stackmap do; a non-NULL key is EINVAL.
const (
	typeQueue       = 22
	typeStack       = 23
	typeBloomFilter = 30
)

func init() {
	typeNames[typeQueue] = "QUEUE"
	typeNames[typeStack] = "STACK"
	typeNames[typeBloomFilter] = "BLOOM_FILTER"
}

// noKey is a non-NULL pointer to zero bytes: a key where none may be.
var noKey = []byte{}

// wantKeylessFlag is the reference's errno for a valid key-less spec with
// one extra map_flags bit (QUEUE_STACK_CREATE_FLAG_MASK is NUMA_NODE and
// the access flags; BLOOM_CREATE_FLAG_MASK adds ZERO_SEED).
func wantKeylessFlag(t uint32, bit int) syscall.Errno {
	switch f := uint32(1) << bit; f {
	case fNumaNode, fRdOnly, fWrOnly, fRdOnlyProg, fWrOnlyProg:
		return 0
	case fZeroSeed:
		return wantOr(t == typeBloomFilter, 0, unix.EINVAL)
	}
	return unix.EINVAL
}

func keylessCases(opts Options) []caseDef {
	var cs []caseDef
	for _, t := range []uint32{typeQueue, typeStack, typeBloomFilter} {
		tn := typeName(t)
		b := mapSpec{Type: t, ValueSize: 8, MaxEntries: 4}
		with := func(f func(s *mapSpec)) mapSpec { s := b; f(&s); return s }
		cs = append(cs,
			createCase(tn+"/valid", b, 0),
			createCase(tn+"/key_size_4", with(func(s *mapSpec) { s.KeySize = 4 }), unix.EINVAL),
			createCase(tn+"/value_size_0", with(func(s *mapSpec) { s.ValueSize = 0 }), unix.EINVAL),
			createCase(tn+"/max_entries_0", with(func(s *mapSpec) { s.MaxEntries = 0 }), unix.EINVAL),
			createCase(tn+"/value_size_1", with(func(s *mapSpec) { s.ValueSize = 1 }), 0),
			createCase(tn+"/value_size_4MiB", with(func(s *mapSpec) { s.ValueSize = 4 << 20; s.MaxEntries = 1 }), 0),
			createCase(tn+"/value_size_4MiB+1", with(func(s *mapSpec) { s.ValueSize = 4<<20 + 1; s.MaxEntries = 1 }), unix.E2BIG),
			createCase(tn+"/value_size_max_u32", with(func(s *mapSpec) { s.ValueSize = 1<<32 - 1 }), unix.E2BIG),
			createCase(tn+"/RDONLY|WRONLY", with(func(s *mapSpec) { s.Flags = fRdOnly | fWrOnly }), unix.EINVAL),
			createCase(tn+"/RDONLY_PROG|WRONLY_PROG", with(func(s *mapSpec) { s.Flags = fRdOnlyProg | fWrOnlyProg }), unix.EINVAL),
			createCase(tn+"/flag/1<<31", with(func(s *mapSpec) { s.Flags = 1 << 31 }), unix.EINVAL),
			// Order: the bloom filter's E2BIG (map_alloc_check) comes before its EINVALs (map_alloc);
			// queues check the EINVALs first.
			createCase(tn+"/order/key_size_4+value_too_big", with(func(s *mapSpec) { s.KeySize = 4; s.ValueSize = 4<<20 + 1 }),
				wantOr(t == typeBloomFilter, unix.E2BIG, unix.EINVAL)),
			createCase(tn+"/order/NO_PREALLOC+value_too_big", with(func(s *mapSpec) { s.Flags = fNoPrealloc; s.ValueSize = 4<<20 + 1 }),
				wantOr(t == typeBloomFilter, unix.E2BIG, unix.EINVAL)),
			createCase(tn+"/order/RDONLY|WRONLY+key_size_4", with(func(s *mapSpec) { s.Flags = fRdOnly | fWrOnly; s.KeySize = 4 }), unix.EINVAL),
			createCase(tn+"/max_entries_2^20", with(func(s *mapSpec) { s.MaxEntries = 1 << 20; s.ValueSize = 4 }), 0),
		)
		for bit := 0; bit <= 20; bit++ {
			cs = append(cs, createCase(fmt.Sprintf("%s/flag/%s", tn, createFlagsString(1<<bit)),
				with(func(s *mapSpec) { s.Flags = 1 << bit }), wantKeylessFlag(t, bit)))
		}
		if t == typeBloomFilter {
			for _, x := range []uint64{1, 2, 5, 15, 16, 17, 0x1f, 1 << 32, 1 << 63} {
				cs = append(cs, createCase(fmt.Sprintf("%s/map_extra_%#x", tn, x), with(func(s *mapSpec) { s.MapExtra = x }),
					wantOr(x&^0xf == 0, 0, unix.EINVAL)))
			}
			cs = append(cs, createCase(tn+"/order/map_extra_16+value_too_big", with(func(s *mapSpec) { s.MapExtra = 16; s.ValueSize = 4<<20 + 1 }), unix.E2BIG))
		} else {
			cs = append(cs,
				createCase(tn+"/map_extra_1", with(func(s *mapSpec) { s.MapExtra = 1 }), unix.EINVAL),
				createCase(tn+"/order/map_extra+key_size_4", with(func(s *mapSpec) { s.MapExtra = 1; s.KeySize = 4 }), unix.EINVAL),
			)
		}
	}
	for _, t := range []uint32{typeQueue, typeStack} {
		tn := typeName(t)
		cs = append(cs,
			caseDef{"keyless/" + tn + "/test_queuemap", func(c *caseCtx) { testQueueStackMap(c, t) }},
			caseDef{"keyless/" + tn + "/errors", func(c *caseCtx) { testQueueStackErrors(c, t) }},
			caseDef{"keyless/" + tn + "/access", func(c *caseCtx) { testKeylessAccess(c, t) }},
			caseDef{"keyless/" + tn + "/value_size_5_wrap", func(c *caseCtx) {
				// Odd sizes, and the ring wrapping many times.
				p := c.create(mapSpec{Type: t, ValueSize: 5, MaxEntries: 3})
				for i := 0; i < 40; i++ {
					flags := uint64(bpfExist)
					if i%3 == 0 {
						flags = bpfAny
					}
					p.update(nil, p.val(uint64(i)), flags)
					if i%4 == 1 {
						p.lookupAndDelete(nil, 0)
					}
					p.lookup(nil, 0)
				}
				for i := 0; i < 4; i++ {
					p.lookupAndDelete(nil, 0)
				}
			}},
			caseDef{"keyless/" + tn + "/random", func(c *caseCtx) { randomQueueStack(c, t, opts.RandomOps) }},
		)
	}
	cs = append(cs,
		caseDef{"keyless/BLOOM_FILTER/errors", testBloomErrors},
		caseDef{"keyless/BLOOM_FILTER/access", func(c *caseCtx) { testKeylessAccess(c, typeBloomFilter) }},
		caseDef{"keyless/BLOOM_FILTER/no_false_negatives", testBloomNoFalseNegatives},
	)
	// With BPF_F_ZERO_SEED both filters hold the same bits: every test,
	// false positives included, must agree.
	for _, g := range []struct {
		value, max uint32
		extra      uint64
	}{
		{4, 1, 0}, {4, 10, 0}, {8, 100, 0}, {5, 100, 0}, {3, 50, 3}, {12, 1000, 1}, {16, 200, 15}, {1, 7, 2}, {6, 33, 4},
	} {
		cs = append(cs, caseDef{fmt.Sprintf("keyless/BLOOM_FILTER/zero_seed/value_%d_max_%d_extra_%d", g.value, g.max, g.extra), func(c *caseCtx) {
			randomBloom(c, mapSpec{Type: typeBloomFilter, ValueSize: g.value, MaxEntries: g.max, MapExtra: g.extra, Flags: fZeroSeed}, opts.RandomOps)
		}})
	}
	return cs
}

// bloomTest compares one membership test; value is the input.
func (p *pair) bloomTest(value []byte, flags uint64) result {
	kv, uv := bytes.Clone(value), bytes.Clone(value)
	desc := fmt.Sprintf("lookup(key=NULL, value=%s, %s)", hexs(value), elemFlagsString(flags))
	r := p.compare(desc, p.k.lookup(nil, kv, flags), p.u.lookup(nil, uv, flags))
	if !bytes.Equal(kv, value) || !bytes.Equal(uv, value) {
		p.c.diff("%s changed the input value: kernel %s, ours %s", desc, hexs(kv), hexs(uv))
	}
	return r
}

// keylessBatches runs every batch command on a key-less map (ENOTSUPP
// after the permission checks, on both sides).
func (p *pair) keylessBatches(want func(cmd string) syscall.Errno) {
	vals := p.val(1)
	out := make([]byte, 4)
	for _, b := range []struct {
		name string
		cmd  int
		run  func() (int, error)
	}{
		{"lookup_batch", cmdMapLookupBatch, func() (int, error) { return p.u.m.LookupBatch(nil, out, nil, vals, 0, 0) }},
		{"lookup_and_delete_batch", cmdMapLookupAndDeleteBatch, func() (int, error) { return p.u.m.LookupAndDeleteBatch(nil, out, nil, vals, 0, 0) }},
		{"update_batch", cmdMapUpdateBatch, func() (int, error) { return p.u.m.UpdateBatch(nil, vals, 0, 0) }},
		{"delete_batch", cmdMapDeleteBatch, func() (int, error) { return p.u.m.DeleteBatch(nil, 0) }},
	} {
		_, ke := kernelBatch(b.cmd, p.k.fd, nil, out, nil, vals, 1, 0, 0)
		_, uerr := b.run()
		p.u.lastErr = uerr
		p.compare(b.name+"(keys=NULL, count=1)", ke, errnoOf(uerr)).want(want(b.name))
	}
}

// testQueueStackMap is test_queuemap / test_stackmap.
func testQueueStackMap(c *caseCtx, t uint32) {
	const max = 32
	p := c.create(mapSpec{Type: t, ValueSize: 4, MaxEntries: max})
	vals := make([][]byte, max+max/2)
	for i := range vals {
		vals[i] = p.val(c.rng.Uint64())
	}
	p.lookup(nil, 0).want(unix.ENOENT)
	p.lookupAndDelete(nil, 0).want(unix.ENOENT)
	for i := 0; i < max; i++ {
		p.update(nil, vals[i], bpfAny).want(0)
	}
	p.update(nil, vals[0], bpfAny).want(unix.E2BIG)
	p.lookup(nil, 0).want(0)
	for i := max; i < len(vals); i++ {
		p.update(nil, vals[i], bpfExist).want(0)
	}
	for i := 0; i < max; i++ {
		p.lookupAndDelete(nil, 0).want(0)
	}
	p.lookupAndDelete(nil, 0).want(unix.ENOENT)
	p.lookup(nil, 0).want(unix.ENOENT)
	p.del(nil).want(unix.EINVAL)
	p.next(nil).want(unix.EINVAL)
}

// testQueueStackErrors tries every command with every mistake.
func testQueueStackErrors(c *caseCtx, t uint32) {
	p := c.create(mapSpec{Type: t, ValueSize: 8, MaxEntries: 2})
	v := p.val(7)
	for _, f := range []uint64{bpfNoExist, 3, bpfFLock, bpfFLock | bpfExist, bpfFLock | bpfNoExist, bpfFCPU, bpfAllCPUs, 1 << 32, ^uint64(0), 7} {
		p.update(nil, v, f).want(unix.EINVAL)
	}
	p.update(noKey, v, bpfAny).want(unix.EINVAL)
	p.update(noKey, v, 3).want(unix.EINVAL)
	p.update(nil, v, bpfExist).want(0) // not full: BPF_EXIST just pushes
	p.update(nil, p.val(8), bpfAny).want(0)
	p.update(nil, p.val(9), bpfAny).want(unix.E2BIG)
	p.update(nil, p.val(9), bpfNoExist).want(unix.EINVAL) // flags before fullness
	for _, f := range badLookupFlags {
		p.lookup(nil, f).want(unix.EINVAL)
		p.lookupAndDelete(nil, f).want(unix.EINVAL)
	}
	p.lookup(noKey, 0).want(unix.EINVAL)
	p.lookupAndDelete(noKey, 0).want(unix.EINVAL)
	p.lookupAndDelete(nil, bpfExist).want(unix.EINVAL)
	p.lookupAndDelete(nil, bpfFLock).want(unix.EINVAL)
	p.del(nil).want(unix.EINVAL)
	p.del(noKey).want(unix.EINVAL)
	p.next(nil).want(unix.EINVAL)
	p.next(noKey).want(unix.EINVAL)
	p.keylessBatches(func(string) syscall.Errno { return ENOTSUPP })
	p.lookup(nil, 0).want(0)
	// Freeze: pushes and pops are EPERM, peeks work.
	p.freeze().want(0)
	p.update(nil, v, bpfAny).want(unix.EPERM)
	p.update(nil, v, bpfNoExist).want(unix.EPERM) // permission before flags
	p.lookupAndDelete(nil, 0).want(unix.EPERM)
	p.lookup(nil, 0).want(0)
	p.del(nil).want(unix.EPERM)
	p.freeze().want(unix.EPERM)
	p.keylessBatches(func(cmd string) syscall.Errno { return wantOr(cmd == "lookup_batch", ENOTSUPP, unix.EPERM) })
}

// testKeylessAccess is test_map_wronly_stack_or_queue and its read-only
// counterpart, for bloom filters too.
func testKeylessAccess(c *caseCtx, t uint32) {
	p := c.create(mapSpec{Type: t, ValueSize: 8, MaxEntries: 4})
	v := p.val(3)
	p.update(nil, v, bpfAny).want(0)
	wo := p.reopen(fWrOnly)
	wo.update(nil, p.val(4), bpfAny).want(0)
	wo.lookup(nil, 0).want(unix.EPERM)
	wo.lookupAndDelete(nil, 0).want(unix.EPERM)
	wo.next(nil).want(unix.EPERM)
	wo.keylessBatches(func(cmd string) syscall.Errno {
		return wantOr(cmd == "lookup_batch" || cmd == "lookup_and_delete_batch", unix.EPERM, ENOTSUPP)
	})
	ro := p.reopen(fRdOnly)
	ro.update(nil, v, bpfAny).want(unix.EPERM)
	ro.lookupAndDelete(nil, 0).want(unix.EPERM)
	ro.del(nil).want(unix.EPERM)
	ro.keylessBatches(func(cmd string) syscall.Errno { return wantOr(cmd == "lookup_batch", ENOTSUPP, unix.EPERM) })
	if t == typeBloomFilter {
		ro.bloomTest(v, 0).want(0)
		ro.next(nil).want(unix.EOPNOTSUPP)
	} else {
		ro.lookup(nil, 0).want(0)
		ro.next(nil).want(unix.EINVAL)
	}
	// Created write-only.
	w := c.create(mapSpec{Type: t, ValueSize: 8, MaxEntries: 4, Flags: fWrOnly})
	w.update(nil, v, bpfAny).want(0)
	w.lookup(nil, 0).want(unix.EPERM)
	w.lookupAndDelete(nil, 0).want(unix.EPERM)
	r := w.reopen(fRdOnly)
	if t == typeBloomFilter {
		r.bloomTest(v, 0).want(0)
	} else {
		r.lookup(nil, 0).want(0)
	}
}

// randomQueueStack pushes (BPF_ANY or BPF_EXIST, sometimes a bad flag),
// peeks and pops at random and compares every result.
func randomQueueStack(c *caseCtx, t uint32, n int) {
	if n == 0 {
		n = DefaultRandomOps
	}
	p := c.create(mapSpec{Type: t, ValueSize: 12, MaxEntries: uint32(1 + c.rng.Intn(16))})
	var h history
	for i := 0; i < n; i++ {
		before := len(c.res.Diffs)
		var res result
		switch x := c.rng.Intn(100); {
		case x < 25:
			res = p.update(nil, p.val(c.rng.Uint64()), bpfAny)
		case x < 45:
			res = p.update(nil, p.val(c.rng.Uint64()), bpfExist)
		case x < 48:
			res = p.update(nil, p.val(c.rng.Uint64()), invalidElemFlags[c.rng.Intn(len(invalidElemFlags))])
		case x < 70:
			res = p.lookup(nil, 0)
		case x < 98:
			res = p.lookupAndDelete(nil, 0)
		default:
			res = p.lookupAndDelete(nil, bpfFLock)
		}
		h.add(res.desc + " = " + errName(res.k))
		if len(c.res.Diffs) > before {
			c.diff("replay: Options{Seed: %d, Match: %q} (case seed %d); last ops: %s", c.r.seed, c.res.Name, c.seed, h.String())
			return
		}
	}
}

func testBloomErrors(c *caseCtx) {
	p := c.create(mapSpec{Type: typeBloomFilter, ValueSize: 8, MaxEntries: 16})
	v := p.val(1)
	for _, f := range []uint64{bpfNoExist, bpfExist, 3, bpfFLock, bpfFCPU, 1 << 32, ^uint64(0)} {
		p.update(nil, v, f).want(unix.EINVAL)
	}
	p.update(noKey, v, bpfAny).want(unix.EINVAL)
	p.update(nil, v, bpfAny).want(0)
	p.update(nil, v, bpfAny).want(0) // a second push of a value is fine
	p.bloomTest(v, 0).want(0)
	for _, f := range badLookupFlags {
		p.bloomTest(v, f).want(unix.EINVAL)
	}
	kv, uv := bytes.Clone(v), bytes.Clone(v)
	p.compare("lookup(key=non-NULL)", p.k.lookup(noKey, kv, 0), p.u.lookup(noKey, uv, 0)).want(unix.EINVAL)
	p.del(nil).want(unix.EOPNOTSUPP)
	p.del(noKey).want(unix.EINVAL)
	p.next(nil).want(unix.EOPNOTSUPP)
	p.next(noKey).want(unix.EINVAL)
	p.lookupAndDelete(nil, 0).want(ENOTSUPP)
	p.lookupAndDelete(nil, bpfFLock).want(unix.EINVAL)
	p.lookupAndDelete(noKey, 0).want(unix.EINVAL)
	p.keylessBatches(func(string) syscall.Errno { return ENOTSUPP })
	p.freeze().want(0)
	p.update(nil, p.val(2), bpfAny).want(unix.EPERM)
	p.update(nil, p.val(2), bpfExist).want(unix.EPERM)
	p.bloomTest(v, 0).want(0)
	p.del(nil).want(unix.EPERM)
}

// testBloomNoFalseNegatives: random seeds differ, so only pushed values
// are compared: every one tests present on both sides. Absent values must
// test absent often enough on ours (the false positive rate of a filter
// sized for max_entries is about 2%; allow 20%).
func testBloomNoFalseNegatives(c *caseCtx) {
	for _, s := range []mapSpec{
		{Type: typeBloomFilter, ValueSize: 4, MaxEntries: 500},
		{Type: typeBloomFilter, ValueSize: 7, MaxEntries: 300, MapExtra: 3},
		{Type: typeBloomFilter, ValueSize: 64, MaxEntries: 100, MapExtra: 8},
	} {
		p := c.create(s)
		var pushed [][]byte
		for i := uint32(0); i < s.MaxEntries; i++ {
			v := p.val(c.rng.Uint64())
			pushed = append(pushed, v)
			p.update(nil, v, bpfAny).want(0)
		}
		for _, v := range pushed {
			p.bloomTest(v, 0).want(0)
		}
		fp := 0
		const probes = 2000
		for i := 0; i < probes; i++ {
			if p.u.lookup(nil, p.val(c.rng.Uint64()|1<<63), 0) == 0 {
				fp++
			}
		}
		c.res.Ops += probes
		if fp > probes/5 {
			c.diff("%s: %d of %d values never pushed test present on ours", s, fp, probes)
		}
	}
}

// randomBloom pushes and tests random values (from a small pool, so that
// tests hit pushed values too) on two zero-seed filters and compares every
// answer: both filters hold the same bits.
func randomBloom(c *caseCtx, s mapSpec, n int) {
	if n == 0 {
		n = DefaultRandomOps
	}
	p := c.create(s)
	pool := make([][]byte, 4*s.MaxEntries+8)
	for i := range pool {
		pool[i] = make([]byte, s.ValueSize)
		c.rng.Read(pool[i])
	}
	var h history
	for i := 0; i < n; i++ {
		before := len(c.res.Diffs)
		v := pool[c.rng.Intn(len(pool))]
		var res result
		if c.rng.Intn(4) == 0 {
			res = p.update(nil, v, bpfAny)
		} else {
			res = p.bloomTest(v, 0)
		}
		h.add(res.desc + " = " + errName(res.k))
		if len(c.res.Diffs) > before {
			c.diff("replay: Options{Seed: %d, Match: %q} (case seed %d); last ops: %s", c.r.seed, c.res.Name, c.seed, h.String())
			return
		}
	}
}
