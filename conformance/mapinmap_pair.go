package conformance

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Map-in-map types, and inner-map kinds no other case file names.
const (
	typeArrayOfMaps = 12
	typeHashOfMaps  = 13
	mimRingBuf      = 27
	mimUserRingBuf  = 31
)

func init() {
	typeNames[typeArrayOfMaps] = "ARRAY_OF_MAPS"
	typeNames[typeHashOfMaps] = "HASH_OF_MAPS"
	for t, n := range map[uint32]string{mimRingBuf: "RINGBUF", mimUserRingBuf: "USER_RINGBUF"} {
		if _, ok := typeNames[t]; !ok {
			typeNames[t] = n
		}
	}
}

// mimBadFD is an fd number no process has open (EBADF in the kernel);
// mimBadID is an ID no map of ours has (EBADF in userbpf).
const (
	mimBadFD = 1 << 30
	mimBadID = 0xfffffff0
)

// The values of a map-in-map are 4 bytes on both sides, but they differ:
// an update takes an inner map's fd in the kernel and its ID in userbpf,
// and a lookup returns the kernel's ID of the inner map there and ours
// here. The cases therefore compare by identity: every inner map exists
// on both sides (a twin), and a kernel lookup that returns the kernel ID
// of twin T must be matched by our lookup returning our ID of T.

// twin is one inner map on both sides with its two IDs.
type twin struct {
	label    string
	p        *pair
	kid, uid uint32
}

// twins are the inner maps of one case, by kernel ID and by our ID.
type twins struct {
	c     *caseCtx
	byKID map[uint32]*twin
	byUID map[uint32]*twin
}

func newTwins(c *caseCtx) *twins {
	return &twins{c: c, byKID: map[uint32]*twin{}, byUID: map[uint32]*twin{}}
}

// add creates s on both sides (any failure ends the case) and registers
// it as label.
func (ts *twins) add(label string, s mapSpec) *twin {
	return ts.register(label, ts.c.create(s))
}

// register records an existing pair (an outer map too) as label.
func (ts *twins) register(label string, p *pair) *twin {
	info, e := kernelInfo(p.k.fd)
	if e != 0 {
		ts.c.fatal("BPF_OBJ_GET_INFO_BY_FD on inner map %s: %s", label, errName(e))
	}
	t := &twin{label: label, p: p, kid: info.ID, uid: p.u.m.ID()}
	ts.byKID[t.kid], ts.byUID[t.uid] = t, t
	return t
}

func (ts *twins) kname(id uint32) string {
	if t := ts.byKID[id]; t != nil {
		return fmt.Sprintf("%s (kernel id %d)", t.label, id)
	}
	return fmt.Sprintf("kernel id %d (no map of this case)", id)
}

func (ts *twins) uname(id uint32) string {
	if t := ts.byUID[id]; t != nil {
		return fmt.Sprintf("%s (our id %d)", t.label, id)
	}
	return fmt.Sprintf("our id %d (no map of this case)", id)
}

// withInner sets tmpl as s's inner-map template on both sides.
func withInner(s mapSpec, tmpl *twin) mapSpec {
	s.InnerFD, s.InnerMap = tmpl.p.k.fd, tmpl.p.u.m
	return s
}

// withoutInner gives the kernel an fd that is not open and us no template.
func withoutInner(s mapSpec) mapSpec {
	s.InnerFD, s.InnerMap = mimBadFD, nil
	return s
}

// mim is an outer map on both sides.
type mim struct {
	*pair
	ts   *twins
	tmpl *twin // the template, when known
}

func (ts *twins) wrap(p *pair) *mim {
	// Arrays of maps iterate by index, hashes of maps with ZERO_SEED in
	// the kernel's bucket order: both sides must then agree on the order.
	p.exact = p.s.Type == typeArrayOfMaps || p.s.Flags&fZeroSeed != 0
	return &mim{pair: p, ts: ts}
}

// outer creates s with tmpl as template on both sides; any failure ends
// the case.
func (ts *twins) outer(s mapSpec, tmpl *twin) *mim {
	m := ts.wrap(ts.c.create(withInner(s, tmpl)))
	m.tmpl = tmpl
	return m
}

// createOuter compares the creation of s (whose inner template is already
// set, or deliberately missing); want is the expected kernel errno.
func (ts *twins) createOuter(s mapSpec, want syscall.Errno) *mim {
	p := ts.c.createCompare(s, want)
	if p == nil {
		return nil
	}
	return ts.wrap(p)
}

func (m *mim) reopen(flags uint32) *mim {
	return &mim{pair: m.pair.reopen(flags), ts: m.ts, tmpl: m.tmpl}
}

// set updates key's slot with inner map t (the kernel gets t's fd, ours
// t's ID).
func (m *mim) set(key []byte, t *twin, flags uint64) result {
	desc := fmt.Sprintf("update(key=%s, inner map %s, %s)", hexs(key), t.label, elemFlagsString(flags))
	return m.compare(desc, m.k.update(key, k32(uint32(t.p.k.fd)), flags), m.u.update(key, k32(t.uid), flags))
}

// setBad updates key's slot with an fd that is not open (kernel) and an
// ID that no map has (ours).
func (m *mim) setBad(key []byte, flags uint64) result {
	desc := fmt.Sprintf("update(key=%s, no such map: fd %d / id %#x, %s)", hexs(key), mimBadFD, mimBadID, elemFlagsString(flags))
	return m.compare(desc, m.k.update(key, k32(mimBadFD), flags), m.u.update(key, k32(mimBadID), flags))
}

// get looks key up on both sides: the errnos must match, and on success
// the kernel's inner map must be the twin of ours; on failure neither
// side may write the output buffer differently.
func (m *mim) get(key []byte, flags uint64) result {
	return m.getDesc("", key, flags)
}

func (m *mim) getDesc(prefix string, key []byte, flags uint64) result {
	kv, uv := filled(4), filled(4)
	desc := fmt.Sprintf("%slookup(key=%s, %s)", prefix, hexs(key), elemFlagsString(flags))
	r := m.compare(desc, m.k.lookup(key, kv, flags), m.u.lookup(key, uv, flags))
	r.val = kv
	switch {
	case r.k != r.u:
	case r.k == 0:
		m.sameInner(desc, kv, uv)
	case !bytes.Equal(kv, uv):
		m.c.diff("%s = %s: output buffer: kernel %s, ours %s", desc, errName(r.k), hexs(kv), hexs(uv))
	}
	return r
}

// sameInner reports when the kernel's inner map ID kv and ours uv do not
// name twins.
func (m *mim) sameInner(desc string, kv, uv []byte) {
	kid, uid := binary.NativeEndian.Uint32(kv), binary.NativeEndian.Uint32(uv)
	if t := m.ts.byKID[kid]; t == nil || t.uid != uid {
		m.c.diff("%s: kernel returned %s, ours %s", desc, m.ts.kname(kid), m.ts.uname(uid))
	}
}

// check walks both outer maps (in order for arrays and ZERO_SEED hashes,
// as sets otherwise) and compares every slot by identity; for arrays the
// walk includes the empty slots, whose lookups must both be ENOENT.
func (m *mim) check(desc string) {
	for _, k := range m.walk(desc) {
		m.getDesc(desc+": ", k, 0)
	}
}

// lookupBatch runs a lookup (del: lookup-and-delete) batch of n elements
// on both sides and compares errno, count, out cursor, keys, and values
// by identity.
func (m *mim) lookupBatch(del bool, in []byte, n int, elemFlags, flags uint64) batchResult {
	ks, cs := int(m.s.KeySize), m.cursorSize()
	kk, kv, ko := filled(n*ks), filled(n*4), filled(cs)
	uk, uv, uo := filled(n*ks), filled(n*4), filled(cs)
	name := "lookup_batch"
	if del {
		name = "lookup_and_delete_batch"
	}
	desc := fmt.Sprintf("%s(in=%s, count=%d, elem_flags=%s, flags=%#x)", name, hexs(in), n, elemFlagsString(elemFlags), flags)
	kn, ke := m.k.lookupBatch(del, in, ko, kk, kv, elemFlags, flags)
	un, ue, stuck := m.watchdog(func() (int, syscall.Errno) { return m.u.lookupBatch(del, in, uo, uk, uv, elemFlags, flags) })
	if stuck != "" {
		m.c.res.Ops++
		m.c.diff("%s: kernel %s (count %d), ours %s", desc, errName(ke), kn, stuck)
		return batchResult{result: result{p: m.pair, desc: desc, k: ke, u: errUnknown}, n: kn, out: ko}
	}
	r := batchResult{result: m.compare(desc, ke, ue), n: kn, out: ko}
	if ke != ue || !countComparable(ke) {
		return r
	}
	if kn != un {
		m.c.diff("%s = %s: kernel count %d, ours %d", desc, errName(ke), kn, un)
		return r
	}
	if !bytes.Equal(ko, uo) {
		m.c.diff("%s = %s: out cursor: kernel %s, ours %s", desc, errName(ke), hexs(ko), hexs(uo))
	}
	if kn < 0 || kn > n {
		m.c.diff("%s = %s: count %d outside 0..%d", desc, errName(ke), kn, n)
		return r
	}
	if !bytes.Equal(kk[:kn*ks], uk[:kn*ks]) {
		m.c.diff("%s = %s: keys: kernel %s, ours %s", desc, errName(ke), hexs(kk[:kn*ks]), hexs(uk[:kn*ks]))
	}
	for i := 0; i < kn; i++ {
		m.sameInner(fmt.Sprintf("%s: value %d (key %s)", desc, i, hexs(kk[i*ks:(i+1)*ks])), kv[i*4:(i+1)*4], uv[i*4:(i+1)*4])
	}
	return r
}

// watchdogTimeout bounds one batch command of ours.
const watchdogTimeout = time.Second

// watchdog runs one batch command of ours with a time limit. A command
// that does not return is stuck on an empty ARRAY_OF_MAPS slot (a lookup
// batch that retries the same key forever): the watchdog then fills our
// empty slots with the template's twin, which lets it finish, and empties
// them again, so that both sides hold the same slots; the message says
// what happened ("" when the command returned in time).
func (m *mim) watchdog(f func() (int, syscall.Errno)) (int, syscall.Errno, string) {
	type ret struct {
		n int
		e syscall.Errno
	}
	ch := make(chan ret, 1)
	go func() {
		n, e := f()
		ch <- ret{n, e}
	}()
	select {
	case r := <-ch:
		return r.n, r.e, ""
	case <-time.After(watchdogTimeout):
	}
	var filledSlots [][]byte
	if m.s.Type == typeArrayOfMaps && m.tmpl != nil {
		v := make([]byte, 4)
		for i := uint32(0); i < m.s.MaxEntries; i++ {
			if errnoOf(m.u.m.Lookup(k32(i), v, 0)) == unix.ENOENT && m.u.m.Update(k32(i), k32(m.tmpl.uid), bpfAny) == nil {
				filledSlots = append(filledSlots, k32(i))
			}
		}
	}
	select {
	case <-ch:
	case <-time.After(watchdogTimeout):
		m.c.fatal("ours did not return within %v, even after its empty slots were filled; its goroutine is left spinning", 2*watchdogTimeout)
	}
	for _, k := range filledSlots {
		if err := m.u.m.Delete(k); err != nil {
			m.c.fatal("emptying slot %s again after unsticking ours: %v", hexs(k), err)
		}
	}
	return 0, errUnknown, fmt.Sprintf("did not return within %v (it spins while a slot is empty: it only returned once %d empty slots of ours were filled, which were then emptied again)", watchdogTimeout, len(filledSlots))
}

// updateBatch updates keys[i] with ins[i] (nil: no such map) on both
// sides and compares errno and count.
func (m *mim) updateBatch(keys [][]byte, ins []*twin, elemFlags, flags uint64) batchResult {
	var kb, kvals, uvals []byte
	var labels []string
	for i, k := range keys {
		kb = append(kb, k...)
		if t := ins[i]; t != nil {
			kvals, uvals = append(kvals, k32(uint32(t.p.k.fd))...), append(uvals, k32(t.uid)...)
			labels = append(labels, t.label)
		} else {
			kvals, uvals = append(kvals, k32(mimBadFD)...), append(uvals, k32(mimBadID)...)
			labels = append(labels, "no-such-map")
		}
	}
	desc := fmt.Sprintf("update_batch(keys=%s, inner maps %v, elem_flags=%s, flags=%#x)", keysString(keys), labels, elemFlagsString(elemFlags), flags)
	kn, ke := m.k.updateBatch(kb, kvals, elemFlags, flags)
	un, ue := m.u.updateBatch(kb, uvals, elemFlags, flags)
	r := batchResult{result: m.compare(desc, ke, ue), n: kn}
	// An EINVAL on the first element's flags leaves the kernel's count as
	// given; an EINVAL at element i (an incompatible inner map) sets it to i.
	if ke == ue && (countComparable(ke) || kn != len(keys)) && kn != un {
		m.c.diff("%s = %s: kernel count %d, ours %d", desc, errName(ke), kn, un)
	}
	return r
}

// keysOf concatenates keys for deleteBatch.
func keysOf(keys ...[]byte) []byte { return bytes.Join(keys, nil) }
