package conformance

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
)

// maxDiffs bounds the diffs one case records.
const maxDiffs = 25

// regionLimit bounds the scratch region (virtual; only what is used costs).
const regionLimit = 4 << 30

type caseFunc func(c *caseCtx)

type caseDef struct {
	name string
	fn   caseFunc
}

// runner holds what the cases share: our region and the kernel's BTF.
type runner struct {
	opts   Options
	region *shm.Region
	rcu    *rcu.Domain
	ncpu   int
	seq    int
	btfFDs map[[2]uint32]int
	seed   int64
}

// caseCtx is one running case.
type caseCtx struct {
	r       *runner
	res     *CaseResult
	rng     *rand.Rand
	seed    int64
	closers []func()
}

type abortCase struct{}

// Run runs every case against the running kernel and userbpf and reports
// the comparison. If bpf(2) is unavailable the report says it skipped.
func Run(opts Options) Report {
	start := time.Now()
	rep := Report{Kernel: kernelRelease(), NumCPU: possibleCPUs()}
	if reason := probe(); reason != "" {
		rep.Skipped, rep.SkipReason = true, reason
		return rep
	}
	// Run on one thread pinned to one CPU: per-CPU LRU lists (and the
	// kernel's local free lists) then see every insert from the same CPU
	// on both sides, as the LRU selftests do.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpus unix.CPUSet
	if unix.SchedGetaffinity(0, &cpus) == nil {
		for c := 0; c < 1024; c++ {
			if cpus.IsSet(c) {
				var one unix.CPUSet
				one.Set(c)
				if unix.SchedSetaffinity(0, &one) == nil {
					defer unix.SchedSetaffinity(0, &cpus)
				}
				break
			}
		}
	}

	rep.Seed = opts.Seed
	if rep.Seed == 0 {
		rep.Seed = time.Now().UnixNano()
	}
	if opts.RandomOps == 0 {
		opts.RandomOps = DefaultRandomOps
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "userbpf-conformance-")
		if err != nil {
			rep.Skipped, rep.SkipReason = true, fmt.Sprintf("cannot make a scratch directory: %v", err)
			return rep
		}
		defer os.RemoveAll(d)
		dir = d
	}
	path := filepath.Join(dir, fmt.Sprintf("conformance-%d-%d.region", os.Getpid(), time.Now().UnixNano()))
	region, err := shm.Create(path, shm.Options{SizeLimit: regionLimit, CPUs: rep.NumCPU})
	if err != nil {
		rep.Skipped, rep.SkipReason = true, fmt.Sprintf("cannot create the scratch region %s: %v", path, err)
		return rep
	}
	r := &runner{opts: opts, region: region, rcu: rcu.New(region), ncpu: region.NumCPU(), btfFDs: map[[2]uint32]int{}, seed: rep.Seed}
	defer func() {
		for _, fd := range r.btfFDs {
			unix.Close(fd)
		}
		r.rcu.Close()
		region.Close()
		shm.Remove(path, true)
	}()

	for _, cd := range allCases(opts) {
		if opts.Match != "" && !strings.Contains(cd.name, opts.Match) {
			continue
		}
		rep.Cases = append(rep.Cases, r.runCase(cd))
	}
	for _, c := range rep.Cases {
		if c.Pass {
			rep.Passed++
		} else {
			rep.Failed++
		}
	}
	rep.Duration = time.Since(start)
	return rep
}

func (r *runner) runCase(cd caseDef) (res CaseResult) {
	res.Name = cd.name
	h := fnv.New64a()
	h.Write([]byte(cd.name))
	seed := r.seed ^ int64(h.Sum64()>>1)
	c := &caseCtx{r: r, res: &res, rng: rand.New(rand.NewSource(seed)), seed: seed}
	defer func() {
		for j := len(c.closers) - 1; j >= 0; j-- {
			c.closers[j]()
		}
		if x := recover(); x != nil {
			if _, ok := x.(abortCase); !ok {
				buf := make([]byte, 4096)
				buf = buf[:runtime.Stack(buf, false)]
				res.Diffs = append(res.Diffs, fmt.Sprintf("panic: %v\n%s", x, buf))
			}
		}
		res.Pass = len(res.Diffs) == 0
	}()
	cd.fn(c)
	return res
}

// probe is probeBPF, replaceable by tests.
var probe = probeBPF

// probeBPF creates a tiny array map; a failure explains why the suite
// cannot run.
func probeBPF() string {
	a := createAttr{MapType: typeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	fd, e := kernelCreate(&a)
	if e != 0 {
		switch e {
		case unix.EPERM, unix.EACCES:
			return fmt.Sprintf("bpf(2) BPF_MAP_CREATE is not permitted (%s): run as root or with CAP_BPF, and check kernel.unprivileged_bpf_disabled", errName(e))
		case unix.ENOSYS:
			return "bpf(2) is not available (ENOSYS): the kernel lacks CONFIG_BPF_SYSCALL or a seccomp filter blocks it"
		default:
			return fmt.Sprintf("bpf(2) probe map create failed: %s", errName(e))
		}
	}
	unix.Close(fd)
	return ""
}

// possibleCPUs is the kernel's number of possible CPUs.
func possibleCPUs() int { return shm.PossibleCPUs() }

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (r *runner) btf(valueSize, lockOff uint32) (int, error) {
	k := [2]uint32{valueSize, lockOff}
	if fd, ok := r.btfFDs[k]; ok {
		return fd, nil
	}
	fd, log, e := loadBTF(lockBTF(valueSize, lockOff))
	if e != 0 {
		return -1, fmt.Errorf("BTF load for a %d-byte value with a lock at %d: %s: %s", valueSize, lockOff, errName(e), log)
	}
	r.btfFDs[k] = fd
	return fd, nil
}

// diff records a mismatch.
func (c *caseCtx) diff(format string, args ...any) {
	if len(c.res.Diffs) == maxDiffs {
		c.res.Diffs = append(c.res.Diffs, "... (more diffs omitted)")
	}
	if len(c.res.Diffs) > maxDiffs {
		return
	}
	c.res.Diffs = append(c.res.Diffs, fmt.Sprintf(format, args...))
}

// note records kernel behaviour that contradicts the semantics reference.
func (c *caseCtx) note(format string, args ...any) {
	c.res.Notes = append(c.res.Notes, fmt.Sprintf(format, args...))
}

// fatal records a mismatch and ends the case.
func (c *caseCtx) fatal(format string, args ...any) {
	c.diff(format, args...)
	panic(abortCase{})
}

func (c *caseCtx) deviation(s string) { c.res.Deviation = s }

// newName returns a map name unique in the region and valid in the kernel.
func (r *runner) newName() string {
	r.seq++
	return fmt.Sprintf("conf_%d", r.seq)
}

// tryCreate creates the map on both sides and returns both errnos and, if
// both succeeded, the pair.
func (c *caseCtx) tryCreate(s mapSpec) (*pair, syscall.Errno, syscall.Errno, error) {
	name := s.Name
	if name == "" {
		name = c.r.newName()
	}
	fd, kerr, err := createKernel(s, name, c.r.btf)
	if err != nil {
		c.fatal("create %s: %v", s, err)
	}
	km := &kernelMap{fd: fd, keySize: int(s.KeySize)}
	if kerr == 0 {
		c.closers = append(c.closers, km.close)
	}
	um, uerrv := createUser(c.r.region, c.r.rcu, s, name)
	uerr := errnoOf(uerrv)
	c.res.Ops++
	if kerr != 0 || uerr != 0 {
		return nil, kerr, uerr, uerrv
	}
	p := &pair{c: c, s: s, name: name, k: km, u: &userMap{m: um}, ncpu: c.r.ncpu}
	p.exact = isArray(s.Type) || s.Flags&fZeroSeed != 0
	p.compareInfo()
	return p, 0, 0, nil
}

// compareInfo compares what BPF_OBJ_GET_INFO_BY_FD reports with our
// handle's view: type, sizes, max_entries (LRU rounding) and map_flags
// (RDONLY/WRONLY stripped).
func (p *pair) compareInfo() {
	info, e := kernelInfo(p.k.fd)
	if e != 0 {
		p.c.diff("BPF_OBJ_GET_INFO_BY_FD: %s", errName(e))
		return
	}
	m := p.u.m
	got := [5]uint32{uint32(m.Type()), m.KeySize(), m.ValueSize(), m.MaxEntries(), m.Flags()}
	want := [5]uint32{info.Type, info.KeySize, info.ValueSize, info.MaxEntries, info.MapFlags}
	if got != want {
		p.c.diff("map info after create %s: kernel type/key/value/max_entries/map_flags %v, ours %v", p.s, want, got)
	}
}

// create creates the map on both sides; any failure ends the case.
func (c *caseCtx) create(s mapSpec) *pair {
	p, kerr, uerr, uerrv := c.tryCreate(s)
	if p == nil {
		c.fatal("create %s: kernel %s, ours %s%s", s, errName(kerr), errName(uerr), ourMsg(uerrv))
	}
	return p
}

// createCompare creates the map on both sides and compares the errnos;
// want is what the semantics reference says the kernel returns.
func (c *caseCtx) createCompare(s mapSpec, want syscall.Errno) *pair {
	p, kerr, uerr, uerrv := c.tryCreate(s)
	if kerr != uerr {
		c.diff("create %s: kernel %s, ours %s%s", s, errName(kerr), errName(uerr), ourMsg(uerrv))
	}
	if want != kerr {
		c.note("create %s: kernel %s, the semantics reference says %s", s, errName(kerr), errName(want))
	}
	return p
}

func ourMsg(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf(" [ours: %v]", err)
}

// pair is the same map on both sides.
type pair struct {
	c     *caseCtx
	s     mapSpec
	name  string
	k     *kernelMap
	u     *userMap
	ncpu  int
	exact bool // get_next_key order is deterministic (arrays, ZERO_SEED hashes)
}

// vsize is the syscall value size.
func (p *pair) vsize() int {
	if isPerCPU(p.s.Type) {
		return p.ncpu * int(roundUp8(p.s.ValueSize))
	}
	return int(p.s.ValueSize)
}

func roundUp8(x uint32) uint32 { return (x + 7) &^ 7 }

// key encodes i as a key: little endian, truncated or zero-padded.
func (p *pair) key(i uint64) []byte {
	k := make([]byte, p.s.KeySize)
	for j := 0; j < len(k) && j < 8; j++ {
		k[j] = byte(i >> (8 * j))
	}
	return k
}

// val makes a syscall-layout value whose bytes derive from x.
func (p *pair) val(x uint64) []byte {
	v := make([]byte, p.vsize())
	for j := range v {
		v[j] = byte(x>>(8*(j%8))) ^ byte(j*37)
	}
	return v
}

// result is one command's outcome on both sides.
type result struct {
	p    *pair
	desc string
	k, u syscall.Errno
	val  []byte // the kernel's output (value or next key)
}

// want notes when the kernel's errno is not what the reference says.
func (r result) want(e syscall.Errno) result {
	if r.k != e {
		r.p.c.note("%s: kernel %s, the semantics reference says %s", r.desc, errName(r.k), errName(e))
	}
	return r
}

func (p *pair) compare(desc string, k, u syscall.Errno) result {
	p.c.res.Ops++
	if k != u {
		p.c.diff("%s: kernel %s, ours %s%s", desc, errName(k), errName(u), ourMsg(p.u.lastErr))
	}
	return result{p: p, desc: desc, k: k, u: u}
}

func hexs(b []byte) string {
	if b == nil {
		return "NULL"
	}
	if len(b) > 48 {
		return hex.EncodeToString(b[:48]) + "..."
	}
	return hex.EncodeToString(b)
}

func (p *pair) update(key, value []byte, flags uint64) result {
	desc := fmt.Sprintf("update(key=%s, value=%s, %s)", hexs(key), hexs(value), elemFlagsString(flags))
	return p.compare(desc, p.k.update(key, value, flags), p.u.update(key, value, flags))
}

func (p *pair) del(key []byte) result {
	desc := fmt.Sprintf("delete(key=%s)", hexs(key))
	return p.compare(desc, p.k.del(key), p.u.del(key))
}

func (p *pair) freeze() result {
	return p.compare("freeze()", p.k.freeze(), p.u.freeze())
}

// fill is the byte both output buffers start with, to see what a command
// writes (and whether it writes on failure).
const fill = 0xa5

func filled(n int) []byte { return bytes.Repeat([]byte{fill}, n) }

// lookup compares errno and the whole output buffer; it returns the
// kernel's value.
func (p *pair) lookup(key []byte, flags uint64) result {
	return p.lookupCmd("lookup", key, flags, p.k.lookup, p.u.lookup)
}

func (p *pair) lookupAndDelete(key []byte, flags uint64) result {
	return p.lookupCmd("lookup_and_delete", key, flags, p.k.lookupAndDelete, p.u.lookupAndDelete)
}

func (p *pair) lookupCmd(name string, key []byte, flags uint64, kf, uf func(k, v []byte, f uint64) syscall.Errno) result {
	kv, uv := filled(p.vsize()), filled(p.vsize())
	desc := fmt.Sprintf("%s(key=%s, %s)", name, hexs(key), elemFlagsString(flags))
	r := p.compare(desc, kf(key, kv, flags), uf(key, uv, flags))
	if r.k == r.u {
		p.compareBytes(desc+" value", kv, uv)
	}
	r.val = kv
	return r
}

// compareBytes reports the first difference of two values, naming the CPU
// block and whether it lies in the padding.
func (p *pair) compareBytes(desc string, k, u []byte) bool {
	if bytes.Equal(k, u) {
		return true
	}
	i := 0
	for i < len(k) && i < len(u) && k[i] == u[i] {
		i++
	}
	where := fmt.Sprintf("byte %d", i)
	if isPerCPU(p.s.Type) {
		stride := int(roundUp8(p.s.ValueSize))
		cpu, off := i/stride, i%stride
		where = fmt.Sprintf("cpu %d byte %d", cpu, off)
		if off >= int(p.s.ValueSize) {
			where += " (padding after value_size)"
		}
	} else if p.s.Lock && i >= int(p.s.LockOff) && i < int(p.s.LockOff)+4 {
		where += " (the bpf_spin_lock word)"
	}
	p.c.diff("%s differs at %s: kernel %s, ours %s", desc, where, hexs(k), hexs(u))
	return false
}

// next compares get_next_key; with a deterministic order the next keys
// must match, otherwise only errnos of a nil key on an empty map do.
func (p *pair) next(key []byte) result {
	kn, un := filled(int(p.s.KeySize)), filled(int(p.s.KeySize))
	desc := fmt.Sprintf("get_next_key(key=%s)", hexs(key))
	r := p.compare(desc, p.k.nextKey(key, kn), p.u.nextKey(key, un))
	if r.k == r.u && !bytes.Equal(kn, un) {
		p.c.diff("%s: kernel next key %s, ours %s", desc, hexs(kn), hexs(un))
	}
	r.val = kn
	return r
}

// walkOne iterates one side from a nil key; it stops after limit keys.
func walkOne(t target, keySize, limit int) ([][]byte, syscall.Errno, bool) {
	var keys [][]byte
	var cur []byte
	for len(keys) < limit {
		n := make([]byte, keySize)
		e := t.nextKey(cur, n)
		if e == unix.ENOENT {
			return keys, 0, true
		}
		if e != 0 {
			return keys, e, false
		}
		keys = append(keys, n)
		cur = n
	}
	return keys, 0, false
}

// walk iterates both sides and compares the keys: in order when the order
// is deterministic, as sets otherwise. It returns the kernel's keys.
func (p *pair) walk(desc string) [][]byte {
	limit := int(p.s.MaxEntries)*2 + 16
	if p.s.KeySize == 0 {
		return nil
	}
	kk, ke, kdone := walkOne(p.k, int(p.s.KeySize), limit)
	uk, ue, udone := walkOne(p.u, int(p.s.KeySize), limit)
	p.c.res.Ops += len(kk) + 1
	switch {
	case ke != ue:
		p.c.diff("%s: get_next_key walk: kernel failed with %s, ours with %s", desc, errName(ke), errName(ue))
	case kdone != udone:
		p.c.diff("%s: get_next_key walk: kernel ended=%v after %d keys, ours ended=%v after %d keys", desc, kdone, len(kk), udone, len(uk))
	}
	if p.exact {
		if !keysEqual(kk, uk) {
			p.c.diff("%s: get_next_key order: kernel %s, ours %s", desc, keysString(kk), keysString(uk))
		}
	} else if !keysEqual(sortedKeys(kk), sortedKeys(uk)) {
		p.c.diff("%s: key sets differ: kernel %s, ours %s", desc, keysString(sortedKeys(kk)), keysString(sortedKeys(uk)))
	}
	return kk
}

// check walks both maps and compares every value.
func (p *pair) check(desc string) {
	keys := p.walk(desc)
	for _, k := range keys {
		kv, uv := filled(p.vsize()), filled(p.vsize())
		ke, ue := p.k.lookup(k, kv, 0), p.u.lookup(k, uv, 0)
		p.c.res.Ops++
		if ke != ue {
			p.c.diff("%s: lookup(key=%s): kernel %s, ours %s%s", desc, hexs(k), errName(ke), errName(ue), ourMsg(p.u.lastErr))
			continue
		}
		p.compareBytes(fmt.Sprintf("%s: lookup(key=%s) value", desc, hexs(k)), kv, uv)
	}
}

func keysEqual(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, func(x, y []byte) bool { return bytes.Equal(x, y) })
}

func sortedKeys(k [][]byte) [][]byte {
	s := slices.Clone(k)
	slices.SortFunc(s, bytes.Compare)
	return s
}

func keysString(keys [][]byte) string {
	var b strings.Builder
	b.WriteString("[")
	for i, k := range keys {
		if i == 40 {
			fmt.Fprintf(&b, " ... %d more", len(keys)-i)
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(hex.EncodeToString(k))
	}
	b.WriteString("]")
	return b.String()
}
