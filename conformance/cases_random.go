package conformance

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// randomConfigs are the maps the random sequences run on.
func randomConfigs() []mapSpec {
	return []mapSpec{
		{Type: typeArray, KeySize: 4, ValueSize: 12, MaxEntries: 16},
		{Type: typePerCPUArray, KeySize: 4, ValueSize: 12, MaxEntries: 16},
		{Type: typeArray, KeySize: 4, ValueSize: 16, MaxEntries: 16, Lock: true, LockOff: 8},
		{Type: typeArray, KeySize: 4, ValueSize: 8, MaxEntries: 600, Flags: fMmapable},
		{Type: typeHash, KeySize: 4, ValueSize: 12, MaxEntries: 16, Flags: fZeroSeed},
		{Type: typeHash, KeySize: 6, ValueSize: 12, MaxEntries: 16, Flags: fZeroSeed | fNoPrealloc},
		{Type: typeHash, KeySize: 8, ValueSize: 8, MaxEntries: 32},
		{Type: typeHash, KeySize: 4, ValueSize: 16, MaxEntries: 16, Flags: fZeroSeed, Lock: true, LockOff: 4},
		{Type: typeHash, KeySize: 4, ValueSize: 24, MaxEntries: 8, Flags: fZeroSeed | fNoPrealloc, Lock: true, LockOff: 20},
		{Type: typeHash, KeySize: 16, ValueSize: 4, MaxEntries: 100, Flags: fZeroSeed},
		{Type: typePerCPUHash, KeySize: 4, ValueSize: 12, MaxEntries: 16, Flags: fZeroSeed},
		{Type: typePerCPUHash, KeySize: 5, ValueSize: 8, MaxEntries: 16, Flags: fZeroSeed | fNoPrealloc},
		{Type: typeLRUHash, KeySize: 4, ValueSize: 12, MaxEntries: 16, Flags: fZeroSeed},
		{Type: typeLRUHash, KeySize: 4, ValueSize: 12, MaxEntries: 16, Flags: fNoCommonLRU},
		{Type: typeLRUPerCPUHash, KeySize: 4, ValueSize: 12, MaxEntries: 16},
		{Type: typeLRUPerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 16, Flags: fNoCommonLRU | fZeroSeed},
	}
}

func randomCases(opts Options) []caseDef {
	var cs []caseDef
	for _, s := range randomConfigs() {
		name := fmt.Sprintf("random/%s/key_%d_value_%d_max_%d_%s", typeName(s.Type), s.KeySize, s.ValueSize, s.MaxEntries, createFlagsString(s.Flags))
		if s.Lock {
			name += fmt.Sprintf("_lock@%d", s.LockOff)
		}
		n := opts.RandomOps
		if n == 0 {
			n = DefaultRandomOps
		}
		cs = append(cs, caseDef{name, func(c *caseCtx) {
			if isLRU(s.Type) {
				runRandomLRU(c, s, n)
			} else {
				runRandomExact(c, s, n)
			}
		}})
	}
	return cs
}

// rnd draws the operations of a random sequence.
type rnd struct {
	*rand.Rand
	p *pair
}

func (r rnd) key() []byte {
	if isArray(r.p.s.Type) {
		switch r.Intn(20) {
		case 0:
			return k32(r.Uint32())
		case 1:
			return k32(r.p.s.MaxEntries + uint32(r.Intn(3)))
		}
		return k32(uint32(r.Intn(int(r.p.s.MaxEntries))))
	}
	return r.p.key(uint64(r.Intn(int(2 * r.p.s.MaxEntries))))
}

// value is random bytes in the syscall layout. Per-CPU hash values get
// zero padding: what the padding reads back is the padding cases' job,
// and a difference there must not hide everything else.
func (r rnd) value() []byte {
	v := make([]byte, r.p.vsize())
	r.Read(v)
	if isPerCPU(r.p.s.Type) && !isArray(r.p.s.Type) {
		stride := int(roundUp8(r.p.s.ValueSize))
		for c := 0; c < r.p.ncpu; c++ {
			clear(v[c*stride+int(r.p.s.ValueSize) : (c+1)*stride])
		}
	}
	return v
}

var invalidElemFlags = []uint64{3, 7, bpfFCPU, bpfAllCPUs, 1 << 32, bpfFCPU | 1<<32, ^uint64(0)}

func (r rnd) updateFlags() uint64 {
	switch x := r.Intn(20); {
	case x < 6:
		return bpfAny
	case x < 11:
		return bpfNoExist
	case x < 16:
		return bpfExist
	case x < 18:
		return bpfFLock | uint64(r.Intn(3))
	}
	return invalidElemFlags[r.Intn(len(invalidElemFlags))]
}

func (r rnd) lookupFlags() uint64 {
	switch x := r.Intn(20); {
	case x < 15:
		return 0
	case x < 18:
		return bpfFLock
	}
	return invalidElemFlags[r.Intn(len(invalidElemFlags))]
}

// history keeps the last operations for failure messages.
type history struct{ ops []string }

func (h *history) add(s string) {
	h.ops = append(h.ops, s)
	if len(h.ops) > 12 {
		h.ops = h.ops[1:]
	}
}

func (h *history) String() string { return strings.Join(h.ops, "; ") }

// runRandomExact applies one random sequence to both maps and compares
// every result; the sequence stops at the first divergence (everything
// after it would differ too).
func runRandomExact(c *caseCtx, s mapSpec, n int) {
	p := c.create(s)
	r := rnd{c.rng, p}
	var h history
	for i := 0; i < n; i++ {
		before := len(c.res.Diffs)
		desc := randomStep(c, p, r, &h)
		if i%250 == 249 {
			p.check(fmt.Sprintf("periodic check after op %d", i))
		}
		if len(c.res.Diffs) > before {
			c.res.Diffs[before] = fmt.Sprintf("%s (op #%d: %s)", c.res.Diffs[before], i, desc)
			c.diff("replay: Options{Seed: %d, Match: %q} (case seed %d); last ops: %s", c.r.seed, c.res.Name, c.seed, h.String())
			return
		}
	}
	p.check("end of sequence")
}

// randomStep runs one random operation on both maps.
func randomStep(c *caseCtx, p *pair, r rnd, h *history) string {
	var desc string
	switch x := r.Intn(100); {
	case x < 35:
		res := p.update(r.key(), r.value(), r.updateFlags())
		desc = res.desc + " = " + errName(res.k)
	case x < 55:
		res := p.lookup(r.key(), r.lookupFlags())
		desc = res.desc + " = " + errName(res.k)
	case x < 70:
		res := p.del(r.key())
		desc = res.desc + " = " + errName(res.k)
	case x < 80:
		res := p.lookupAndDelete(r.key(), r.lookupFlags())
		desc = res.desc + " = " + errName(res.k)
	case x < 90:
		var k []byte
		if r.Intn(3) > 0 {
			k = r.key()
		}
		if p.exact {
			res := p.next(k)
			desc = res.desc + " = " + errName(res.k)
		} else {
			desc = "walk"
			p.walk("walk")
		}
	case x < 96:
		desc = "walk deleting"
		walkDeleting(p, r)
	default:
		desc = "check"
		p.check("check")
	}
	h.add(desc)
	return desc
}

// walkDeleting iterates with the kernel's keys as cursors on both sides,
// deleting some current keys before or after asking for the next one.
func walkDeleting(p *pair, r rnd) {
	if !p.exact {
		// Cursors from the kernel would mean nothing to our order.
		for _, k := range p.walk("walk before deletes") {
			if r.Intn(3) == 0 {
				p.del(k)
			}
		}
		return
	}
	res := p.next(nil)
	for steps := 0; res.k == 0 && steps < int(3*p.s.MaxEntries); steps++ {
		cur := res.val
		switch r.Intn(4) {
		case 0:
			p.del(cur)
			res = p.next(cur) // restarts from the first key
		case 1:
			nx := p.next(cur)
			p.del(cur)
			res = nx
		default:
			res = p.next(cur)
		}
	}
}

// lruSide is one side of an LRU sequence with its own model of what it
// holds: victims differ by design, so each side is checked against the
// rules given its own contents.
type lruSide struct {
	name  string
	t     target
	model map[string][]byte
	max   int
}

// runRandomLRU applies a random sequence to both LRU maps and checks each
// against the rules: no E2BIG ever, at most max_entries keys, errnos that
// follow from the key's presence, values as last written, a key just
// written is present; where both sides hold (or both lack) the key, the
// errnos must also agree.
func runRandomLRU(c *caseCtx, s mapSpec, n int) {
	p := c.create(s)
	r := rnd{c.rng, p}
	kinfo, _ := kernelInfo(p.k.fd)
	sides := []*lruSide{
		{name: "kernel", t: p.k, model: map[string][]byte{}, max: int(kinfo.MaxEntries)},
		{name: "ours", t: p.u, model: map[string][]byte{}, max: int(p.u.m.MaxEntries())},
	}
	var h history
	fail := func(i int, format string, args ...any) {
		c.diff("op #%d: %s", i, fmt.Sprintf(format, args...))
		c.diff("replay: Options{Seed: %d, Match: %q} (case seed %d); last ops: %s", c.r.seed, c.res.Name, c.seed, h.String())
		panic(abortCase{})
	}
	// present looks a key up on one side (a syscall lookup does not mark
	// LRU nodes referenced) and checks its value against the model.
	present := func(i int, sd *lruSide, k []byte) bool {
		out := make([]byte, p.vsize())
		e := sd.t.lookup(k, out, 0)
		c.res.Ops++
		want, known := sd.model[string(k)]
		switch {
		case e == unix.ENOENT:
			delete(sd.model, string(k)) // evicted, or never there
			return false
		case e != 0:
			fail(i, "%s: lookup(key=%s): %s", sd.name, hexs(k), errName(e))
		case !known:
			fail(i, "%s: key %s is present but was never written (or was deleted)", sd.name, hexs(k))
		case !bytes.Equal(out, want):
			fail(i, "%s: key %s holds %s, last written %s", sd.name, hexs(k), hexs(out), hexs(want))
		}
		return true
	}
	walkCheck := func(i int) {
		for _, sd := range sides {
			keys, e, done := walkOne(sd.t, int(s.KeySize), 4*sd.max+8)
			c.res.Ops += len(keys) + 1
			if e != 0 || !done {
				fail(i, "%s: get_next_key walk failed (%s) or did not end", sd.name, errName(e))
			}
			if len(keys) > sd.max {
				fail(i, "%s: holds %d keys, max_entries %d", sd.name, len(keys), sd.max)
			}
			seen := map[string]bool{}
			for _, k := range keys {
				if seen[string(k)] {
					fail(i, "%s: walk returned key %s twice", sd.name, hexs(k))
				}
				seen[string(k)] = true
				present(i, sd, k)
			}
			for k := range sd.model {
				if !seen[k] {
					delete(sd.model, k) // evicted
				}
			}
		}
	}
	for i := 0; i < n; i++ {
		k := r.key()
		had := []bool{present(i, sides[0], k), present(i, sides[1], k)}
		var errs [2]syscall.Errno
		var desc string
		evicting := false // an update evicted its own key on some side
		switch x := r.Intn(100); {
		case x < 45:
			v, f := r.value(), r.updateFlags()
			desc = fmt.Sprintf("update(key=%s, %s)", hexs(k), elemFlagsString(f))
			for j, sd := range sides {
				e := sd.t.update(k, v, f)
				errs[j] = e
				want, selfEvicted := syscall.Errno(0), syscall.Errno(0)
				switch {
				case f&^bpfFLock > bpfExist || f&bpfFLock != 0 && !(s.Lock && j == 1):
					want = unix.EINVAL // the kernel has no lock in LRU values; ours may (deviation)
				case f&^bpfFLock == bpfNoExist && had[j]:
					// The node for the new element is obtained before the bucket
					// is locked and may come from evicting this very key.
					want, selfEvicted = unix.EEXIST, 0
				case f&^bpfFLock == bpfExist && !had[j]:
					want = unix.ENOENT
				case f&^bpfFLock == bpfExist && had[j]:
					selfEvicted = unix.ENOENT
				}
				if e != want && !(had[j] && e == selfEvicted) {
					fail(i, "%s: %s with the key %s: %s, want %s", sd.name, desc, presence(had[j]), errName(e), errName(want))
				}
				if had[j] && e != want {
					evicting = true
					delete(sd.model, string(k))
				}
				if e == 0 {
					sd.model[string(k)] = v
					if !present(i, sd, k) {
						fail(i, "%s: key %s missing right after a successful update", sd.name, hexs(k))
					}
				}
			}
		case x < 65:
			f := r.lookupFlags()
			desc = fmt.Sprintf("lookup(key=%s, %s)", hexs(k), elemFlagsString(f))
			for j, sd := range sides {
				out := make([]byte, p.vsize())
				e := sd.t.lookup(k, out, f)
				errs[j] = e
				want := wantLookup(f, had[j], s.Lock && j == 1)
				if e != want {
					fail(i, "%s: %s with the key %s: %s, want %s", sd.name, desc, presence(had[j]), errName(e), errName(want))
				}
			}
		case x < 80:
			desc = fmt.Sprintf("delete(key=%s)", hexs(k))
			for j, sd := range sides {
				e := sd.t.del(k)
				errs[j] = e
				if want := wantOr(had[j], 0, unix.ENOENT); e != want {
					fail(i, "%s: %s with the key %s: %s, want %s", sd.name, desc, presence(had[j]), errName(e), errName(want))
				}
				delete(sd.model, string(k))
			}
		case x < 90:
			f := r.lookupFlags()
			desc = fmt.Sprintf("lookup_and_delete(key=%s, %s)", hexs(k), elemFlagsString(f))
			for j, sd := range sides {
				out := make([]byte, p.vsize())
				e := sd.t.lookupAndDelete(k, out, f)
				errs[j] = e
				want := wantLookup(f, had[j], s.Lock && j == 1)
				if e != want {
					fail(i, "%s: %s with the key %s: %s, want %s", sd.name, desc, presence(had[j]), errName(e), errName(want))
				}
				if e == 0 {
					if !bytes.Equal(out, sd.model[string(k)]) {
						fail(i, "%s: %s returned %s, last written %s", sd.name, desc, hexs(out), hexs(sd.model[string(k)]))
					}
					delete(sd.model, string(k))
				}
			}
		default:
			desc = "walk"
			walkCheck(i)
		}
		c.res.Ops += 2
		h.add(desc + " = " + errName(errs[0]) + "/" + errName(errs[1]))
		if had[0] == had[1] && errs[0] != errs[1] && !evicting {
			fail(i, "%s with the key %s on both sides: kernel %s, ours %s", desc, presence(had[0]), errName(errs[0]), errName(errs[1]))
		}
		if i%200 == 199 {
			walkCheck(i)
		}
	}
	walkCheck(n)
}

func presence(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}

// wantLookup is the errno of a lookup (or lookup_and_delete) with flags
// on a map without BPF_CPU support.
func wantLookup(f uint64, present, lock bool) syscall.Errno {
	switch {
	case f&^bpfFLock != 0 || f&bpfFLock != 0 && !lock:
		return unix.EINVAL
	case !present:
		return unix.ENOENT
	}
	return 0
}
