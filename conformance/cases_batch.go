package conformance

import (
	"bytes"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// countComparable says whether batch.count is meaningful after errno e:
// the kernel leaves it untouched (the caller's input) when it refuses the
// command before processing (flags, permission, unsupported), so only the
// counts of commands that ran are compared.
func countComparable(e syscall.Errno) bool {
	return e != unix.EINVAL && e != unix.EPERM && e != ENOTSUPP
}

// cursorSize is the size of a batch cursor: a u32 bucket index for hash
// maps, a key for the generic (array) implementation.
func (p *pair) cursorSize() int {
	if isArray(p.s.Type) || p.s.Type == typeLPMTrie {
		return int(p.s.KeySize)
	}
	return 4
}

// batchResult is one batch command on both sides.
type batchResult struct {
	result
	n   int    // kernel count
	out []byte // kernel out cursor
}

// lookupBatch runs a lookup (del: lookup-and-delete) batch of n elements
// from cursor in on both sides and compares the errno, the count, the
// keys and values copied, and the out cursor.
func (p *pair) lookupBatch(del bool, in []byte, n int, elemFlags, flags uint64) batchResult {
	ks, vs, cs := int(p.s.KeySize), p.vsize(), p.cursorSize()
	kk, kv, ko := filled(n*ks), filled(n*vs), filled(cs)
	uk, uv, uo := filled(n*ks), filled(n*vs), filled(cs)
	name := "lookup_batch"
	if del {
		name = "lookup_and_delete_batch"
	}
	desc := fmt.Sprintf("%s(in=%s, count=%d, elem_flags=%s, flags=%#x)", name, hexs(in), n, elemFlagsString(elemFlags), flags)
	kn, ke := p.k.lookupBatch(del, in, ko, kk, kv, elemFlags, flags)
	un, ue := p.u.lookupBatch(del, in, uo, uk, uv, elemFlags, flags)
	r := batchResult{result: p.compare(desc, ke, ue), n: kn, out: ko}
	if ke != ue {
		return r
	}
	if countComparable(ke) && kn != un {
		p.c.diff("%s = %s: kernel count %d, ours %d", desc, errName(ke), kn, un)
		return r
	}
	if !bytes.Equal(ko, uo) {
		p.c.diff("%s = %s: out cursor: kernel %s, ours %s", desc, errName(ke), hexs(ko), hexs(uo))
	}
	if countComparable(ke) {
		if !bytes.Equal(kk[:kn*ks], uk[:kn*ks]) {
			p.c.diff("%s = %s: keys: kernel %s, ours %s", desc, errName(ke), hexs(kk[:kn*ks]), hexs(uk[:kn*ks]))
		}
		for i := 0; i < kn; i++ {
			p.compareBytes(fmt.Sprintf("%s: value %d (key %s)", desc, i, hexs(kk[i*ks:(i+1)*ks])), kv[i*vs:(i+1)*vs], uv[i*vs:(i+1)*vs])
		}
	}
	return r
}

func (p *pair) updateBatch(keys, values []byte, elemFlags, flags uint64) batchResult {
	desc := fmt.Sprintf("update_batch(count=%d, elem_flags=%s, flags=%#x)", len(keys)/int(p.s.KeySize), elemFlagsString(elemFlags), flags)
	kn, ke := p.k.updateBatch(keys, values, elemFlags, flags)
	un, ue := p.u.updateBatch(keys, values, elemFlags, flags)
	r := batchResult{result: p.compare(desc, ke, ue), n: kn}
	if ke == ue && countComparable(ke) && kn != un {
		p.c.diff("%s = %s: kernel count %d, ours %d", desc, errName(ke), kn, un)
	}
	return r
}

func (p *pair) deleteBatch(keys []byte, elemFlags, flags uint64) batchResult {
	desc := fmt.Sprintf("delete_batch(count=%d, elem_flags=%s, flags=%#x)", len(keys)/int(p.s.KeySize), elemFlagsString(elemFlags), flags)
	kn, ke := p.k.deleteBatch(keys, elemFlags, flags)
	un, ue := p.u.deleteBatch(keys, elemFlags, flags)
	r := batchResult{result: p.compare(desc, ke, ue), n: kn}
	if ke == ue && countComparable(ke) && kn != un {
		p.c.diff("%s = %s: kernel count %d, ours %d", desc, errName(ke), kn, un)
	}
	return r
}

// batchKV returns keys from..from+n-1 and values for them.
func (p *pair) batchKV(from, n int) ([]byte, []byte) {
	var keys, vals []byte
	for i := from; i < from+n; i++ {
		keys = append(keys, p.key(uint64(i))...)
		vals = append(vals, p.val(uint64(1000+i))...)
	}
	return keys, vals
}

func batchCases() []caseDef {
	var cs []caseDef
	for _, t := range allTypes {
		tn := typeName(t)
		fl := uint32(0)
		if !isArray(t) {
			fl = fZeroSeed
		}
		s := mapSpec{Type: t, KeySize: 4, ValueSize: 12, MaxEntries: 10, Flags: fl}
		if isLRU(t) {
			s.MaxEntries = lruRoom(nil, t, 10, 10)
		}
		if isArray(t) {
			cs = append(cs, caseDef{"batch/" + tn + "/array_map_batch_ops", func(c *caseCtx) { testArrayBatch(c, s) }})
		} else {
			cs = append(cs, caseDef{"batch/" + tn + "/htab_map_batch_ops", func(c *caseCtx) { testHashBatch(c, s) }})
		}
		cs = append(cs,
			caseDef{"batch/" + tn + "/flags", func(c *caseCtx) { testBatchFlags(c, s) }},
			caseDef{"batch/" + tn + "/access", func(c *caseCtx) { testBatchAccess(c, s) }},
		)
	}
	for _, t := range []uint32{typeArray, typeHash} {
		s := mapSpec{Type: t, KeySize: 4, ValueSize: 16, MaxEntries: 10, Lock: true, LockOff: 4}
		if t == typeHash {
			s.Flags = fZeroSeed
		}
		cs = append(cs, caseDef{"batch/" + typeName(t) + "/lock", func(c *caseCtx) {
			p := c.create(s)
			keys, vals := p.batchKV(0, 6)
			for i := 0; i < 6; i++ {
				copy(vals[i*16+4:], []byte{0xff, 0xff, 0xff, 0xff})
			}
			p.updateBatch(keys, vals, bpfFLock, 0).want(0)
			p.updateBatch(keys, vals, 0, 0).want(0)
			p.lookupBatch(false, nil, 10, bpfFLock, 0)
			p.lookupBatch(false, nil, 10, 0, 0)
			if t == typeHash {
				p.lookupBatch(true, nil, 10, bpfFLock, 0)
			}
			p.check("after lock batches")
		}})
	}
	return cs
}

// testArrayBatch is array_map_batch_ops: update batch, then lookup batches
// of every step until ENOENT.
func testArrayBatch(c *caseCtx, s mapSpec) {
	p := c.create(s)
	keys, vals := p.batchKV(0, 10)
	p.updateBatch(keys, vals, 0, 0).want(0)
	p.updateBatch(keys[:0], vals[:0], 0, 0).want(0)
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
	p.lookupBatch(false, k32(9), 3, 0, 0).want(unix.ENOENT)
	p.lookupBatch(false, k32(10), 3, 0, 0).want(0) // an index past the end restarts at 0
	p.lookupBatch(true, nil, 3, 0, 0).want(ENOTSUPP)
	p.deleteBatch(keys[:8], 0, 0).want(ENOTSUPP)
	k2, v2 := p.batchKV(8, 4) // indexes 10, 11 are out of range
	p.updateBatch(k2, v2, 0, 0).want(unix.E2BIG)
	p.check("after batches")
}

// testHashBatch is htab_map_batch_ops.
func testHashBatch(c *caseCtx, s mapSpec) {
	p := c.create(s)
	keys, vals := p.batchKV(0, 10)
	p.lookupBatch(true, nil, 10, 0, 0).want(unix.ENOENT) // empty map
	p.lookupBatch(false, nil, 0, 0, 0).want(0)
	p.updateBatch(keys, vals, 0, 0).want(0)
	p.lookupBatch(true, nil, 10, 0, 0).want(unix.ENOENT) // all 10, map emptied
	p.check("emptied")
	for step := 1; step <= 10; step++ {
		p.updateBatch(keys, vals, 0, 0).want(0)
		var in []byte
		for calls := 0; calls < 40; calls++ {
			r := p.lookupBatch(false, in, step, 0, 0)
			if r.k != 0 {
				break
			}
			in = r.out
		}
		p.deleteBatch(keys[:4*step], 0, 0).want(0)
		p.check(fmt.Sprintf("after delete batch of %d", step))
		in = nil
		for calls := 0; calls < 40; calls++ {
			r := p.lookupBatch(true, in, step, 0, 0)
			if r.k != 0 && r.k != unix.ENOSPC {
				break
			}
			if r.k == 0 {
				in = r.out
			}
			if r.k == unix.ENOSPC {
				break
			}
		}
		p.check(fmt.Sprintf("after lookup_and_delete batches of %d", step))
		p.lookupBatch(true, nil, 10, 0, 0)
	}
	p.updateBatch(keys, vals, 0, 0).want(0)
	p.lookupBatch(false, k32(16), 10, 0, 0).want(unix.ENOENT) // bucket index past n_buckets
	p.lookupBatch(false, k32(1<<31), 10, 0, 0).want(unix.ENOENT)
	p.lookupBatch(false, k32(15), 10, 0, 0)
	p.deleteBatch(append(p.key(3), p.key(3)...), 0, 0).want(unix.ENOENT) // stops at the first failure
	p.check("end")
}

// testBatchFlags tries elem_flags and flags values on every batch command.
func testBatchFlags(c *caseCtx, s mapSpec) {
	p := c.create(s)
	keys, vals := p.batchKV(0, 4)
	for _, ef := range []uint64{bpfNoExist, bpfExist, bpfFLock, 3, bpfFCPU, 1 << 32} {
		// 6.18's generic update batch takes only BPF_F_LOCK in elem_flags
		// (no BPF_NOEXIST/BPF_EXIST yet).
		p.updateBatch(keys, vals, ef, 0).want(unix.EINVAL)
		p.lookupBatch(false, nil, 4, ef, 0)
		p.lookupBatch(true, nil, 4, ef, 0)
		p.deleteBatch(keys, ef, 0)
	}
	p.updateBatch(keys, vals, 0, 0).want(0)
	p.updateBatch(keys, vals, 0, 1) // generic update batch ignores batch.flags
	p.lookupBatch(false, nil, 4, 0, 1)
	p.lookupBatch(true, nil, 4, 0, 1)
	p.deleteBatch(keys, 0, 1)
	p.check("after")
}

// testBatchAccess: batches through read-only / write-only handles and on
// a frozen map.
func testBatchAccess(c *caseCtx, s mapSpec) {
	p := c.create(s)
	keys, vals := p.batchKV(0, 4)
	p.updateBatch(keys, vals, 0, 0).want(0)
	ro := p.reopen(fRdOnly)
	ro.updateBatch(keys, vals, 0, 0).want(unix.EPERM)
	ro.lookupBatch(false, nil, 4, 0, 0)
	ro.lookupBatch(true, nil, 4, 0, 0).want(unix.EPERM)
	ro.deleteBatch(keys, 0, 0).want(unix.EPERM)
	wo := p.reopen(fWrOnly)
	wo.lookupBatch(false, nil, 4, 0, 0).want(unix.EPERM)
	wo.lookupBatch(true, nil, 4, 0, 0).want(unix.EPERM)
	wo.updateBatch(keys, vals, 0, 0).want(0)
	p.freeze().want(0)
	p.updateBatch(keys, vals, 0, 0).want(unix.EPERM)
	p.deleteBatch(keys, 0, 0).want(unix.EPERM)
	p.lookupBatch(true, nil, 4, 0, 0).want(unix.EPERM)
	p.lookupBatch(false, nil, 4, 0, 0)
	p.check("frozen")
}
