package conformance

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// lockVal is a value with 0xff in the lock word, which every copy must
// ignore.
func (p *pair) lockVal(x uint64) []byte {
	v := p.val(x)
	if p.s.Lock {
		for i := p.s.LockOff; i < p.s.LockOff+4; i++ {
			v[i] = 0xff
		}
	}
	return v
}

func lockCases() []caseDef {
	var cs []caseDef
	type layout struct{ size, off uint32 }
	layouts := []layout{{16, 0}, {16, 4}, {16, 12}, {8, 4}, {4, 0}, {20, 8}}
	for _, t := range []uint32{typeArray, typeHash} {
		for _, l := range layouts {
			for _, fl := range []uint32{0, fNoPrealloc} {
				if fl != 0 && isArray(t) {
					continue
				}
				if !isArray(t) {
					fl |= fZeroSeed
				}
				s := mapSpec{Type: t, KeySize: 4, ValueSize: l.size, MaxEntries: 8, Flags: fl, Lock: true, LockOff: l.off}
				cs = append(cs, caseDef{fmt.Sprintf("lock/%s/%s/value_%d_lock_at_%d", typeName(t), variantName(s.Flags), l.size, l.off), func(c *caseCtx) { testLock(c, s) }})
			}
		}
		s := mapSpec{Type: t, KeySize: 4, ValueSize: 16, MaxEntries: 8, Lock: true, LockOff: 4}
		cs = append(cs,
			createCase("lock/"+typeName(t)+"/RDONLY_PROG", with(s, func(s *mapSpec) { s.Flags = fRdOnlyProg }), unix.EACCES),
			createCase("lock/"+typeName(t)+"/WRONLY_PROG", with(s, func(s *mapSpec) { s.Flags = fWrOnlyProg }), unix.EACCES),
			createCase("lock/"+typeName(t)+"/RDONLY_fd", with(s, func(s *mapSpec) { s.Flags = fRdOnly }), 0),
		)
	}
	for _, t := range []uint32{typePerCPUArray, typePerCPUHash, typeLRUPerCPUHash} {
		s := mapSpec{Type: t, KeySize: 4, ValueSize: 16, MaxEntries: 8, Lock: true, LockOff: 4}
		cs = append(cs, createCase("lock/"+typeName(t)+"/refused", s, unix.EOPNOTSUPP))
	}
	lru := mapSpec{Type: typeLRUHash, KeySize: 4, ValueSize: 16, MaxEntries: 8, Lock: true, LockOff: 4}
	cs = append(cs,
		// The hash checks run before the value's BTF: NO_PREALLOC on an LRU map is ENOTSUPP either way.
		createCase("lock/LRU_HASH/order/NO_PREALLOC", with(lru, func(s *mapSpec) { s.Flags = fNoPrealloc }), ENOTSUPP),
		createCase("lock/LRU_HASH/order/key_size_0", with(lru, func(s *mapSpec) { s.KeySize = 0 }), unix.EINVAL),
		caseDef{"lock/LRU_HASH/deviation", func(c *caseCtx) { testLRULockDeviation(c, lru) }},
		caseDef{"lock/LRU_HASH/NO_COMMON_LRU/deviation", func(c *caseCtx) {
			testLRULockDeviation(c, with(lru, func(s *mapSpec) { s.Flags = fNoCommonLRU }))
		}},
	)
	return cs
}

func with(s mapSpec, f func(s *mapSpec)) mapSpec { f(&s); return s }

// testLock runs the BPF_F_LOCK commands on a map whose value has a lock.
func testLock(c *caseCtx, s mapSpec) {
	p := c.create(s)
	arr := isArray(s.Type)
	p.update(k32(1), p.lockVal(1), bpfFLock).want(0)
	p.lookup(k32(1), bpfFLock).want(0) // the lock word reads back as zero
	p.lookup(k32(1), 0).want(0)
	p.update(k32(1), p.lockVal(2), bpfAny).want(0)
	p.lookup(k32(1), bpfFLock).want(0)
	p.update(k32(1), p.lockVal(3), bpfFLock|bpfExist).want(0)
	p.update(k32(1), p.lockVal(4), bpfFLock|bpfNoExist).want(unix.EEXIST)
	p.update(k32(1), p.lockVal(4), bpfFLock|3).want(unix.EINVAL)
	p.update(k32(1), p.lockVal(4), bpfFLock|bpfFCPU).want(unix.EINVAL)
	p.lookup(k32(1), bpfFLock|bpfNoExist).want(unix.EINVAL)
	p.lookup(k32(1), bpfFLock|bpfFCPU).want(unix.EINVAL)
	p.lookup(k32(100), bpfFLock).want(unix.ENOENT)
	if arr {
		p.update(k32(8), p.lockVal(4), bpfFLock).want(unix.E2BIG)
		p.lookupAndDelete(k32(1), bpfFLock).want(ENOTSUPP)
		p.lookupAndDelete(k32(1), 0).want(ENOTSUPP)
	} else {
		p.update(k32(2), p.lockVal(5), bpfFLock|bpfExist).want(unix.ENOENT)
		p.update(k32(2), p.lockVal(5), bpfFLock|bpfNoExist).want(0)
		p.update(k32(3), p.lockVal(6), bpfFLock).want(0)
		p.update(k32(4), p.lockVal(7), bpfAny).want(0)
		p.check("three keys")
		// In place under BPF_F_LOCK (keeps the bucket position); replaced otherwise (moves to the head).
		for i := uint32(0); i < 6; i++ {
			p.update(k32(i%4+1), p.lockVal(uint64(10+i)), uint64(i%2)*bpfFLock)
			p.check(fmt.Sprintf("after update %d", i))
		}
		p.lookupAndDelete(k32(2), bpfFLock).want(0)
		p.lookupAndDelete(k32(3), 0).want(0)
		p.lookupAndDelete(k32(3), bpfFLock).want(unix.ENOENT)
		for i := uint32(10); i < 20; i++ {
			p.update(k32(i), p.lockVal(uint64(i)), bpfFLock|bpfNoExist)
		}
		p.update(k32(50), p.lockVal(1), bpfFLock).want(unix.E2BIG)
		p.update(k32(10), p.lockVal(1), bpfFLock).want(0)
	}
	p.check("end")
	p.freeze().want(ENOTSUPP)
	q := p.reopen(fRdOnly)
	q.freeze().want(ENOTSUPP) // the value check comes before the permission check
	q.update(k32(1), p.lockVal(1), bpfFLock).want(unix.EPERM)
	q.lookup(k32(1), bpfFLock).want(0)
	p.update(k32(1), p.lockVal(1), bpfAny).want(0)
}

// testLRULockDeviation: the kernel refuses a bpf_spin_lock in an LRU hash
// value; userbpf accepts it (docs/semantics.md), with the same BPF_F_LOCK
// semantics as HASH.
func testLRULockDeviation(c *caseCtx, s mapSpec) {
	c.deviation("documented deviation: the kernel refuses a bpf_spin_lock in LRU_HASH values (EOPNOTSUPP); userbpf accepts it")
	name := c.r.newName()
	fd, kerr, err := createKernel(s, name, c.r.btf)
	if err != nil {
		c.fatal("%v", err)
	}
	if kerr == 0 {
		unix.Close(fd)
		c.diff("kernel accepted %s; the deviation is gone (expected EOPNOTSUPP)", s)
	} else if kerr != unix.EOPNOTSUPP {
		c.diff("kernel refused %s with %s; the documented deviation expects EOPNOTSUPP(95)", s, errName(kerr))
	}
	um, uerr := createUser(c.r.region, c.r.rcu, s, name)
	c.res.Ops += 2
	if uerr != nil {
		c.fatal("ours refused %s: %v; userbpf documents accepting it", s, uerr)
	}
	u := &userMap{m: um}
	vs := int(s.ValueSize)
	val := func(x byte) []byte {
		v := make([]byte, vs)
		for i := range v {
			v[i] = x + byte(i)
		}
		for i := s.LockOff; i < s.LockOff+4; i++ {
			v[i] = 0xff
		}
		return v
	}
	expect := func(what string, got, want error) {
		c.res.Ops++
		if errnoOf(got) != errnoOf(want) {
			c.diff("ours: %s: %s, want %s%s", what, errName(errnoOf(got)), errName(errnoOf(want)), ourMsg(got))
		}
	}
	expect("update(1, BPF_F_LOCK)", um.Update(k32(1), val(1), bpfFLock), nil)
	out := make([]byte, vs)
	expect("lookup(1, BPF_F_LOCK)", um.Lookup(k32(1), out, bpfFLock), nil)
	want := val(1)
	copy(want[s.LockOff:], []byte{0, 0, 0, 0})
	if string(out) != string(want) {
		c.diff("ours: lookup(1, BPF_F_LOCK) = %s, want %s (lock word zero)", hexs(out), hexs(want))
	}
	expect("update(1, BPF_F_LOCK|BPF_NOEXIST)", um.Update(k32(1), val(2), bpfFLock|bpfNoExist), unix.EEXIST)
	expect("update(2, BPF_F_LOCK|BPF_EXIST)", um.Update(k32(2), val(2), bpfFLock|bpfExist), unix.ENOENT)
	expect("update(1, BPF_F_LOCK|3)", um.Update(k32(1), val(2), bpfFLock|3), unix.EINVAL)
	expect("lookup_and_delete(1, BPF_F_LOCK)", um.LookupAndDelete(k32(1), out, bpfFLock), nil)
	if string(out) != string(want) {
		c.diff("ours: lookup_and_delete(1, BPF_F_LOCK) = %s, want %s", hexs(out), hexs(want))
	}
	// Full LRU with a lock still evicts, never E2BIG.
	for i := uint32(0); i < 100; i++ {
		expect(fmt.Sprintf("update(%d, BPF_F_LOCK) into a full LRU", i), um.Update(k32(i), val(byte(i)), bpfFLock), nil)
	}
	expect("freeze", u.m.Freeze(), ENOTSUPP)
}
