package conformance

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"syscall"

	"golang.org/x/sys/unix"
)

// LPM_TRIE: keys are struct bpf_lpm_trie_key_u8 { u32 prefixlen; u8
// data[]; }. The kernel's get_next_key order (post-order) is deterministic,
// so walks are compared in order, data bits past the prefix included.
const typeLPMTrie = 11

func init() { typeNames[typeLPMTrie] = "LPM_TRIE" }

// lpmKey builds a key of the map's size: prefixlen, then data (zero
// padded or cut to the map's data size).
func (p *pair) lpmKey(prefixlen uint32, data ...byte) []byte {
	k := make([]byte, p.s.KeySize)
	binary.NativeEndian.PutUint32(k, prefixlen)
	copy(k[4:], data)
	return k
}

// ip4 is an IPv4 address as key data.
func ip4(a, b, c, d byte) []byte { return []byte{a, b, c, d} }

// createLPM creates the trie on both sides; its walk order is exact.
func (c *caseCtx) createLPM(s mapSpec) *pair {
	p := c.create(s)
	p.exact = true
	return p
}

func lpmSpec(keySize, valueSize, max uint32) mapSpec {
	return mapSpec{Type: typeLPMTrie, KeySize: keySize, ValueSize: valueSize, MaxEntries: max, Flags: fNoPrealloc}
}

// wantLPMFlag is the reference's errno for a valid LPM spec (which has
// NO_PREALLOC) with one more map_flags bit: LPM_CREATE_FLAG_MASK is
// NO_PREALLOC, NUMA_NODE and the access flags.
func wantLPMFlag(bit int) syscall.Errno {
	switch f := uint32(1) << bit; f {
	case fNoPrealloc, fNumaNode, fRdOnly, fWrOnly, fRdOnlyProg, fWrOnlyProg:
		return 0
	}
	return unix.EINVAL
}

// lpmValueMax is LPM_VAL_SIZE_MAX on x86-64: KMALLOC_MAX_SIZE - 256 -
// sizeof(struct lpm_trie_node).
const lpmValueMax = 4<<20 - 256 - 24

func lpmCases(opts Options) []caseDef {
	b := lpmSpec(8, 8, 16)
	with := func(f func(s *mapSpec)) mapSpec { s := b; f(&s); return s }
	cs := []caseDef{
		createCase("LPM_TRIE/valid", b, 0),
		createCase("LPM_TRIE/no_NO_PREALLOC", with(func(s *mapSpec) { s.Flags = 0 }), unix.EINVAL),
		createCase("LPM_TRIE/key_size_4", with(func(s *mapSpec) { s.KeySize = 4 }), unix.EINVAL),
		createCase("LPM_TRIE/key_size_5", with(func(s *mapSpec) { s.KeySize = 5 }), 0),
		createCase("LPM_TRIE/key_size_260", with(func(s *mapSpec) { s.KeySize = 260 }), 0),
		createCase("LPM_TRIE/key_size_261", with(func(s *mapSpec) { s.KeySize = 261 }), unix.EINVAL),
		createCase("LPM_TRIE/key_size_0", with(func(s *mapSpec) { s.KeySize = 0 }), unix.EINVAL),
		createCase("LPM_TRIE/value_size_0", with(func(s *mapSpec) { s.ValueSize = 0 }), unix.EINVAL),
		createCase("LPM_TRIE/value_size_1", with(func(s *mapSpec) { s.ValueSize = 1 }), 0),
		createCase("LPM_TRIE/value_size_max", with(func(s *mapSpec) { s.ValueSize = lpmValueMax }), 0),
		createCase("LPM_TRIE/value_size_max+1", with(func(s *mapSpec) { s.ValueSize = lpmValueMax + 1 }), unix.EINVAL),
		createCase("LPM_TRIE/value_size_max_u32", with(func(s *mapSpec) { s.ValueSize = 1<<32 - 1 }), unix.EINVAL),
		createCase("LPM_TRIE/max_entries_0", with(func(s *mapSpec) { s.MaxEntries = 0 }), unix.EINVAL),
		createCase("LPM_TRIE/max_entries_max_u32", with(func(s *mapSpec) { s.MaxEntries = 1<<32 - 1 }), 0),
		createCase("LPM_TRIE/map_extra_1", with(func(s *mapSpec) { s.MapExtra = 1 }), unix.EINVAL),
		createCase("LPM_TRIE/RDONLY|WRONLY", with(func(s *mapSpec) { s.Flags |= fRdOnly | fWrOnly }), unix.EINVAL),
		createCase("LPM_TRIE/RDONLY_PROG|WRONLY_PROG", with(func(s *mapSpec) { s.Flags |= fRdOnlyProg | fWrOnlyProg }), unix.EINVAL),
		createCase("LPM_TRIE/flag/1<<31", with(func(s *mapSpec) { s.Flags |= 1 << 31 }), unix.EINVAL),
	}
	for bit := 0; bit <= 20; bit++ {
		cs = append(cs, createCase("LPM_TRIE/flag/NO_PREALLOC|"+createFlagsString(1<<bit), with(func(s *mapSpec) { s.Flags |= 1 << bit }), wantLPMFlag(bit)))
	}
	cs = append(cs,
		caseDef{"lpm/ipv4", testLPMIPv4},
		caseDef{"lpm/delete", testLPMDelete},
		caseDef{"lpm/get_next_key", testLPMNextKey},
		caseDef{"lpm/flags_and_full", testLPMFlags},
		caseDef{"lpm/data_past_prefix", testLPMDataPastPrefix},
		caseDef{"lpm/key_sizes", testLPMKeySizes},
		caseDef{"lpm/errors", testLPMErrors},
		caseDef{"lpm/access", testLPMAccess},
		caseDef{"lpm/batch", testLPMBatch},
	)
	for _, g := range []struct {
		keySize, max uint32
		lens         []uint32
	}{
		{5, 12, []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{8, 40, []uint32{0, 8, 12, 16, 20, 22, 24, 28, 30, 32, 33}},
		{6, 300, []uint32{0, 3, 7, 8, 9, 15, 16, 17}},
		{20, 30, []uint32{0, 1, 64, 100, 127, 128, 129, 160, 161}},
	} {
		cs = append(cs, caseDef{fmt.Sprintf("lpm/random/key_%d_max_%d", g.keySize, g.max), func(c *caseCtx) {
			randomLPM(c, g.keySize, g.max, g.lens, opts.RandomOps)
		}})
	}
	return cs
}

// lpmLookups looks up a spread of addresses with /32 (and shorter) keys.
func (p *pair) lpmLookups(addrs [][]byte) {
	for _, a := range addrs {
		p.lookup(p.lpmKey(32, a...), 0)
		p.lookup(p.lpmKey(24, a...), 0)
		p.lookup(p.lpmKey(0, a...), 0)
	}
}

var ipv4Probe = [][]byte{
	ip4(192, 168, 0, 1), ip4(192, 168, 1, 1), ip4(192, 168, 128, 1), ip4(192, 168, 2, 1), ip4(192, 168, 255, 255),
	ip4(192, 169, 0, 0), ip4(10, 0, 0, 1), ip4(10, 1, 2, 3), ip4(10, 255, 0, 0), ip4(0, 0, 0, 0), ip4(255, 255, 255, 255),
	ip4(192, 168, 0, 0), ip4(192, 168, 0, 255), ip4(192, 168, 1, 0), ip4(172, 16, 5, 4),
}

// testLPMIPv4 is the kernel's test_lpm_ipaddr with more prefixes.
func testLPMIPv4(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 8, 32))
	p.lpmLookups(ipv4Probe)
	p.next(nil).want(unix.ENOENT)
	for i, pr := range []struct {
		len  uint32
		addr []byte
	}{
		{16, ip4(192, 168, 0, 0)}, {24, ip4(192, 168, 0, 0)}, {24, ip4(192, 168, 1, 0)}, {24, ip4(192, 168, 128, 0)},
		{8, ip4(10, 0, 0, 0)}, {32, ip4(10, 1, 2, 3)}, {12, ip4(172, 16, 0, 0)}, {0, nil}, {31, ip4(192, 168, 0, 0)},
		{9, ip4(10, 128, 0, 0)},
	} {
		p.update(p.lpmKey(pr.len, pr.addr...), p.val(uint64(i+1)), bpfNoExist).want(0)
		p.check(fmt.Sprintf("after inserting /%d", pr.len))
	}
	p.lpmLookups(ipv4Probe)
	p.lookup(p.lpmKey(33, ip4(192, 168, 0, 1)...), 0).want(unix.ENOENT)
	p.lookup(p.lpmKey(1<<31, ip4(192, 168, 0, 1)...), 0).want(unix.ENOENT)
	p.lookup(p.lpmKey(16, ip4(192, 168, 9, 9)...), 0).want(0)
	p.lookup(p.lpmKey(15, ip4(192, 168, 9, 9)...), 0).want(0) // the default route
}

// testLPMDelete is test_lpm_delete: deletes of leaves, of nodes with one
// and two children, of intermediate prefixes (ENOENT) and of missing ones.
func testLPMDelete(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 8, 32))
	ins := func(l uint32, a []byte, v uint64) { p.update(p.lpmKey(l, a...), p.val(v), bpfAny).want(0) }
	// 192.168.0.0/16, 192.168.0.0/24, 192.168.128.0/24, 192.168.1.0/24:
	// /24 nodes 0 and 1 join under an intermediate 192.168.0.0/23.
	ins(16, ip4(192, 168, 0, 0), 1)
	ins(24, ip4(192, 168, 0, 0), 2)
	ins(24, ip4(192, 168, 128, 0), 3)
	ins(24, ip4(192, 168, 1, 0), 4)
	p.check("four prefixes")
	p.del(p.lpmKey(24, ip4(10, 0, 0, 0)...)).want(unix.ENOENT)
	p.del(p.lpmKey(23, ip4(192, 168, 0, 0)...)).want(unix.ENOENT) // the intermediate node
	p.del(p.lpmKey(17, ip4(192, 168, 0, 0)...)).want(unix.ENOENT)
	p.del(p.lpmKey(32, ip4(192, 168, 0, 1)...)).want(unix.ENOENT)
	p.del(p.lpmKey(33, ip4(192, 168, 0, 0)...)).want(unix.EINVAL)
	p.del(p.lpmKey(16, ip4(192, 169, 0, 0)...)).want(unix.ENOENT)
	p.lpmLookups(ipv4Probe)
	p.del(p.lpmKey(16, ip4(192, 168, 0, 0)...)).want(0) // two children: becomes intermediate
	p.check("after deleting the /16")
	p.lpmLookups(ipv4Probe)
	p.update(p.lpmKey(16, ip4(192, 168, 0, 0)...), p.val(5), bpfExist).want(unix.ENOENT)
	p.update(p.lpmKey(16, ip4(192, 168, 0, 0)...), p.val(5), bpfNoExist).want(0) // fills the intermediate node
	p.del(p.lpmKey(24, ip4(192, 168, 1, 0)...)).want(0)                          // leaf with an intermediate parent
	p.check("after deleting 192.168.1.0/24")
	p.lpmLookups(ipv4Probe)
	p.del(p.lpmKey(24, ip4(192, 168, 1, 0)...)).want(unix.ENOENT)
	p.del(p.lpmKey(24, ip4(192, 168, 128, 0)...)).want(0)
	p.del(p.lpmKey(16, ip4(192, 168, 0, 0)...)).want(0) // one child
	p.check("one left")
	p.del(p.lpmKey(24, ip4(192, 168, 0, 0)...)).want(0)
	p.check("empty")
	p.next(nil).want(unix.ENOENT)
	p.lpmLookups(ipv4Probe)
}

// testLPMNextKey is test_lpm_get_next_key: post-order walks as the trie
// grows, from NULL, from every key, from missing and oversized keys.
func testLPMNextKey(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 4, 32))
	p.next(nil).want(unix.ENOENT)
	p.next(p.lpmKey(16, ip4(192, 168, 0, 0)...)).want(unix.ENOENT)
	steps := []struct {
		len  uint32
		addr []byte
	}{
		{16, ip4(192, 168, 0, 0)}, {24, ip4(192, 168, 0, 0)}, {24, ip4(192, 168, 1, 0)}, {24, ip4(192, 168, 128, 0)},
		{24, ip4(192, 168, 0, 0)}, {8, ip4(10, 0, 0, 0)}, {0, nil}, {32, ip4(192, 168, 0, 3)}, {25, ip4(192, 168, 1, 128)},
	}
	for i, s := range steps {
		p.update(p.lpmKey(s.len, s.addr...), p.val(uint64(i)), bpfAny)
		keys := p.walk(fmt.Sprintf("walk after %d inserts", i+1))
		for _, k := range keys {
			p.next(k)
		}
		p.next(p.lpmKey(33, ip4(192, 168, 0, 0)...)).want(0)            // prefixlen past the maximum: first
		p.next(p.lpmKey(20, ip4(192, 168, 0, 0)...))                    // missing: first
		p.next(p.lpmKey(24, ip4(192, 168, 7, 0)...))                    // missing: first
		p.next(p.lpmKey(23, ip4(192, 168, 0, 0)...))                    // an intermediate node: first
		p.next(p.lpmKey(16, ip4(192, 168, 0xff, 0xff)...))              // bits past the prefix do not matter
		p.next(p.lpmKey(1<<32-1, ip4(192, 168, 0xff, 0xff)...)).want(0) // first
	}
}

// testLPMFlags: BPF_NOEXIST / BPF_EXIST on present, absent and
// intermediate prefixes, and ENOSPC when full.
func testLPMFlags(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 8, 3))
	k1, k2, k3 := p.lpmKey(24, ip4(10, 0, 0, 0)...), p.lpmKey(24, ip4(10, 0, 1, 0)...), p.lpmKey(8, ip4(10, 0, 0, 0)...)
	p.update(k1, p.val(1), bpfExist).want(unix.ENOENT)
	p.update(k1, p.val(1), bpfNoExist).want(0)
	p.update(k1, p.val(2), bpfNoExist).want(unix.EEXIST)
	p.update(k1, p.val(3), bpfExist).want(0)
	p.update(k1, p.val(4), bpfAny).want(0)
	p.update(k2, p.val(5), bpfExist).want(unix.ENOENT) // would need an intermediate node
	p.update(k2, p.val(5), bpfAny).want(0)             // creates 10.0.0.0/23 (intermediate)
	p.update(p.lpmKey(23, ip4(10, 0, 0, 0)...), p.val(6), bpfExist).want(unix.ENOENT)
	p.update(k3, p.val(7), bpfExist).want(unix.ENOENT) // above the root
	p.update(k3, p.val(7), bpfNoExist).want(0)
	p.check("three prefixes (full)")
	// Full: a new prefix is ENOSPC in every position; replacing is fine.
	p.update(p.lpmKey(23, ip4(10, 0, 0, 0)...), p.val(8), bpfAny).want(unix.ENOSPC) // the intermediate node
	p.update(p.lpmKey(23, ip4(10, 0, 0, 0)...), p.val(8), bpfNoExist).want(unix.ENOSPC)
	p.update(p.lpmKey(32, ip4(10, 0, 0, 1)...), p.val(8), bpfAny).want(unix.ENOSPC)   // a new leaf
	p.update(p.lpmKey(24, ip4(10, 0, 2, 0)...), p.val(8), bpfAny).want(unix.ENOSPC)   // a new intermediate node
	p.update(p.lpmKey(4, ip4(10, 0, 0, 0)...), p.val(8), bpfAny).want(unix.ENOSPC)    // a new root
	p.update(p.lpmKey(24, ip4(10, 0, 2, 0)...), p.val(8), bpfExist).want(unix.ENOENT) // EXIST before fullness
	p.update(k1, p.val(9), bpfAny).want(0)
	p.update(k2, p.val(10), bpfExist).want(0)
	p.update(k3, p.val(11), bpfAny).want(0)
	p.update(k3, p.val(11), bpfNoExist).want(unix.EEXIST)
	p.check("full, replaced")
	p.del(k2).want(0)
	p.update(p.lpmKey(23, ip4(10, 0, 0, 0)...), p.val(12), bpfAny).want(0)
	p.check("after delete and insert")
	for _, f := range []uint64{3, bpfFLock, bpfFLock | bpfExist, bpfFCPU, 1 << 32, ^uint64(0)} {
		p.update(k1, p.val(1), f).want(unix.EINVAL)
		p.update(p.lpmKey(33, ip4(10, 0, 0, 0)...), p.val(1), f).want(unix.EINVAL)
	}
	p.update(p.lpmKey(33, ip4(10, 0, 0, 0)...), p.val(1), bpfAny).want(unix.EINVAL)
	p.update(p.lpmKey(1<<31, ip4(10, 0, 0, 0)...), p.val(1), bpfNoExist).want(unix.EINVAL)
	p.check("end")
}

// testLPMDataPastPrefix: bits past prefixlen are stored as given (and
// returned by get_next_key) but never compared.
func testLPMDataPastPrefix(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 8, 16))
	p.update(p.lpmKey(8, ip4(10, 1, 2, 3)...), p.val(1), bpfAny).want(0)
	p.check("10.1.2.3/8")
	p.update(p.lpmKey(8, ip4(10, 9, 9, 9)...), p.val(2), bpfNoExist).want(unix.EEXIST)
	p.update(p.lpmKey(8, ip4(10, 9, 9, 9)...), p.val(2), bpfExist).want(0) // replaces the stored data too
	p.check("10.9.9.9/8")
	p.update(p.lpmKey(12, ip4(10, 0xff, 0, 0)...), p.val(3), bpfAny).want(0)
	p.update(p.lpmKey(12, ip4(10, 0x1f, 0, 0)...), p.val(4), bpfAny).want(0)
	p.update(p.lpmKey(13, ip4(10, 0x07, 0, 0)...), p.val(5), bpfAny).want(0)
	p.check("nested with stray bits")
	p.lpmLookups([][]byte{ip4(10, 0, 0, 0), ip4(10, 0x10, 0, 0), ip4(10, 0xf0, 1, 1), ip4(10, 0x08, 0, 0), ip4(11, 0, 0, 0)})
	p.del(p.lpmKey(8, ip4(10, 0x55, 0x55, 0x55)...)).want(0)
	p.del(p.lpmKey(13, ip4(10, 0x00, 0xff, 0xff)...)).want(0)
	p.check("after deletes with other stray bits")
}

// testLPMKeySizes: one data byte, and 256 (prefixes up to 2048 bits).
func testLPMKeySizes(c *caseCtx) {
	p := c.createLPM(lpmSpec(5, 3, 300))
	for i := 0; i < 256; i += 3 {
		p.update(p.lpmKey(uint32(i%9), byte(i)), p.val(uint64(i)), bpfAny)
	}
	p.check("key 5")
	for i := 0; i < 256; i += 7 {
		p.lookup(p.lpmKey(8, byte(i)), 0)
		p.lookup(p.lpmKey(uint32(i%10), byte(i)), 0)
	}
	q := c.createLPM(lpmSpec(260, 16, 64))
	data := make([]byte, 256)
	c.rng.Read(data)
	for _, l := range []uint32{2048, 2047, 1024, 1000, 7, 0, 1500, 2040, 2041} {
		q.update(q.lpmKey(l, data...), q.val(uint64(l)), bpfNoExist).want(0)
	}
	q.update(q.lpmKey(2049, data...), q.val(1), bpfAny).want(unix.EINVAL)
	q.check("key 260")
	other := append([]byte(nil), data...)
	for _, bit := range []int{2047, 2040, 1999, 1001, 500, 6, 0} {
		o := append([]byte(nil), other...)
		o[bit/8] ^= 0x80 >> (bit % 8)
		q.lookup(q.lpmKey(2048, o...), 0)
		q.next(q.lpmKey(2048, o...))
	}
	q.del(q.lpmKey(1024, data...)).want(0)
	q.del(q.lpmKey(2048, data...)).want(0)
	q.check("key 260 after deletes")
}

func testLPMErrors(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 8, 16))
	k := p.lpmKey(24, ip4(10, 0, 0, 0)...)
	p.update(k, p.val(1), bpfAny).want(0)
	for _, f := range badLookupFlags {
		p.lookup(k, f).want(unix.EINVAL)
	}
	p.lookupAndDelete(k, 0).want(ENOTSUPP)
	p.lookupAndDelete(p.lpmKey(33), 0).want(ENOTSUPP)
	p.lookupAndDelete(k, bpfFLock).want(unix.EINVAL)
	p.lookupAndDelete(k, bpfExist).want(unix.EINVAL)
	p.freeze().want(0)
	p.update(k, p.val(2), bpfAny).want(unix.EPERM)
	p.update(k, p.val(2), 3).want(unix.EPERM)
	p.del(k).want(unix.EPERM)
	p.del(p.lpmKey(33)).want(unix.EPERM)
	p.lookup(k, 0).want(0)
	p.next(nil).want(0)
	p.freeze().want(unix.EPERM)
	p.check("frozen")
}

func testLPMAccess(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 8, 16))
	k := p.lpmKey(24, ip4(10, 0, 0, 0)...)
	ro := p.reopen(fRdOnly)
	ro.update(k, p.val(1), bpfAny).want(unix.EPERM)
	ro.del(k).want(unix.EPERM)
	wo := p.reopen(fWrOnly)
	wo.update(k, p.val(1), bpfAny).want(0)
	wo.lookup(k, 0).want(unix.EPERM)
	wo.next(nil).want(unix.EPERM)
	ro.lookup(k, 0).want(0)
	ro.next(nil).want(0)
	wo.del(k).want(0)
	ro.check("through the read-only handle")
}

// testLPMBatch is lpm_trie_map_batch_ops: the generic batches, cursors
// being keys.
func testLPMBatch(c *caseCtx) {
	p := c.createLPM(lpmSpec(8, 8, 12))
	var keys, vals []byte
	for i := 0; i < 10; i++ {
		keys = append(keys, p.lpmKey(uint32(24+i%3*4), ip4(192, 168, byte(i), byte(i*16))...)...)
		vals = append(vals, p.val(uint64(i))...)
	}
	p.lookupBatch(false, nil, 4, 0, 0).want(unix.ENOENT) // empty
	p.updateBatch(keys, vals, 0, 0).want(0)
	p.check("after update batch")
	for step := 1; step <= 11; step++ {
		var in []byte
		for calls := 0; calls < 20; calls++ {
			r := p.lookupBatch(false, in, step, 0, 0)
			if r.k != 0 {
				break
			}
			in = r.out
		}
	}
	p.lookupBatch(false, nil, 0, 0, 0).want(0)
	p.lookupBatch(false, p.lpmKey(33), 3, 0, 0)   // a cursor past the maximum: from the first
	p.lookupBatch(false, p.lpmKey(7, 1), 3, 0, 0) // a missing cursor: from the first
	p.lookupBatch(true, nil, 3, 0, 0).want(ENOTSUPP)
	for _, ef := range []uint64{bpfNoExist, bpfExist, bpfFLock, 3, 1 << 32} {
		p.updateBatch(keys[:16], vals[:16], ef, 0).want(unix.EINVAL)
		p.lookupBatch(false, nil, 4, ef, 0).want(unix.EINVAL)
		p.deleteBatch(keys[:16], ef, 0).want(unix.EINVAL)
	}
	more := append(append([]byte(nil), keys[:16]...), p.lpmKey(32, ip4(1, 2, 3, 4)...)...)
	more = append(more, p.lpmKey(32, ip4(1, 2, 3, 5)...)...)
	more = append(more, p.lpmKey(32, ip4(1, 2, 3, 6)...)...)
	p.updateBatch(more, append(vals[:16:16], append(p.val(20), append(p.val(21), p.val(22)...)...)...), 0, 0).want(unix.ENOSPC)
	p.check("after a batch that filled the trie")
	p.deleteBatch(keys[:5*8], 0, 0).want(0)
	p.check("after delete batch")
	p.deleteBatch(keys[4*8:6*8], 0, 0).want(unix.ENOENT) // stops at the first missing key
	p.deleteBatch(p.lpmKey(33), 0, 0).want(unix.EINVAL)
	p.check("end")
	ro := p.reopen(fRdOnly)
	ro.updateBatch(keys[:8], vals[:8], 0, 0).want(unix.EPERM)
	ro.deleteBatch(keys[:8], 0, 0).want(unix.EPERM)
	ro.lookupBatch(false, nil, 4, 0, 0)
	wo := p.reopen(fWrOnly)
	wo.lookupBatch(false, nil, 4, 0, 0).want(unix.EPERM)
}

// lpmRnd draws random LPM keys: data from a few clusters, prefix lengths
// from lens (which may include one past the maximum).
type lpmRnd struct {
	*rand.Rand
	p    *pair
	lens []uint32
	base [][]byte
}

func (r lpmRnd) key() []byte {
	d := append([]byte(nil), r.base[r.Intn(len(r.base))]...)
	// Flip a few bits here and there, often past the prefix.
	for i := r.Intn(3); i > 0; i-- {
		bit := r.Intn(8 * len(d))
		d[bit/8] ^= 0x80 >> (bit % 8)
	}
	return r.p.lpmKey(r.lens[r.Intn(len(r.lens))], d...)
}

// randomLPM applies a random sequence to two tries and compares every
// result, and the full walk (order, data and values) now and then.
func randomLPM(c *caseCtx, keySize, max uint32, lens []uint32, n int) {
	if n == 0 {
		n = DefaultRandomOps
	}
	p := c.createLPM(lpmSpec(keySize, 8, max))
	r := lpmRnd{Rand: c.rng, p: p, lens: lens}
	for i := 0; i < 4; i++ {
		b := make([]byte, keySize-4)
		c.rng.Read(b)
		r.base = append(r.base, b)
	}
	var h history
	for i := 0; i < n; i++ {
		before := len(c.res.Diffs)
		var res result
		switch x := r.Intn(100); {
		case x < 40:
			f := []uint64{bpfAny, bpfAny, bpfNoExist, bpfExist, 3}[r.Intn(5)]
			res = p.update(r.key(), p.val(r.Uint64()), f)
		case x < 60:
			res = p.lookup(r.key(), 0)
		case x < 80:
			res = p.del(r.key())
		case x < 95:
			var k []byte
			if r.Intn(4) > 0 {
				k = r.key()
			}
			res = p.next(k)
		case x < 97:
			res = p.lookupAndDelete(r.key(), 0)
		default:
			p.check(fmt.Sprintf("check at op %d", i))
			res.desc = "check"
		}
		h.add(res.desc + " = " + errName(res.k))
		if i%200 == 199 {
			p.check(fmt.Sprintf("periodic check after op %d", i))
		}
		if len(c.res.Diffs) > before {
			c.diff("replay: Options{Seed: %d, Match: %q} (case seed %d); last ops: %s", c.r.seed, c.res.Name, c.seed, h.String())
			return
		}
	}
	p.check("end of sequence")
}
