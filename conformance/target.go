package conformance

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
)

// ENOTSUPP is the kernel-internal errno 524, distinct from EOPNOTSUPP (95).
const ENOTSUPP = syscall.Errno(524)

// errUnknown stands for an error of ours that carries no errno at all.
const errUnknown = syscall.Errno(99999)

// Map types (enum bpf_map_type).
const (
	typeHash          = 1
	typeArray         = 2
	typePerCPUHash    = 5
	typePerCPUArray   = 6
	typeLRUHash       = 9
	typeLRUPerCPUHash = 10
)

// Command and creation flags (UAPI).
const (
	fNoPrealloc  = 1 << 0
	fNoCommonLRU = 1 << 1
	fNumaNode    = 1 << 2
	fRdOnly      = 1 << 3
	fWrOnly      = 1 << 4
	fZeroSeed    = 1 << 6
	fRdOnlyProg  = 1 << 7
	fWrOnlyProg  = 1 << 8
	fMmapable    = 1 << 10
	fInnerMap    = 1 << 12

	bpfAny     = 0
	bpfNoExist = 1
	bpfExist   = 2
	bpfFLock   = 4
	bpfFCPU    = 8
	bpfAllCPUs = 16
)

var typeNames = map[uint32]string{
	typeHash: "HASH", typeArray: "ARRAY", typePerCPUHash: "PERCPU_HASH", typePerCPUArray: "PERCPU_ARRAY",
	typeLRUHash: "LRU_HASH", typeLRUPerCPUHash: "LRU_PERCPU_HASH",
}

func typeName(t uint32) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type%d", t)
}

func isPerCPU(t uint32) bool {
	return t == typePerCPUArray || t == typePerCPUHash || t == typeLRUPerCPUHash
}

func isArray(t uint32) bool { return t == typeArray || t == typePerCPUArray }

func isLRU(t uint32) bool { return t == typeLRUHash || t == typeLRUPerCPUHash }

// mapSpec is a map to create on both sides.
type mapSpec struct {
	Type       uint32
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      uint32
	MapExtra   uint64
	Lock       bool   // value holds a struct bpf_spin_lock (BTF on the kernel side)
	LockOff    uint32 // its offset
	Name       string // map name; "" means a fresh generated one
	// InnerFD and InnerMap are the inner-map template of a map-in-map:
	// the kernel's inner_map_fd and our Spec.InnerMap.
	InnerFD  int
	InnerMap *maps.Map
}

func (s mapSpec) String() string {
	str := fmt.Sprintf("%s key %d value %d entries %d flags %s", typeName(s.Type), s.KeySize, s.ValueSize, s.MaxEntries, createFlagsString(s.Flags))
	if s.MapExtra != 0 {
		str += fmt.Sprintf(" map_extra %#x", s.MapExtra)
	}
	if s.Lock {
		str += fmt.Sprintf(" lock@%d", s.LockOff)
	}
	if s.InnerFD != 0 || s.InnerMap != nil {
		str += fmt.Sprintf(" inner_map_fd %d", s.InnerFD)
		if s.InnerMap != nil {
			str += fmt.Sprintf(" (ours: id %d)", s.InnerMap.ID())
		} else {
			str += " (ours: none)"
		}
	}
	return str
}

var createFlagNames = []string{"NO_PREALLOC", "NO_COMMON_LRU", "NUMA_NODE", "RDONLY", "WRONLY", "STACK_BUILD_ID",
	"ZERO_SEED", "RDONLY_PROG", "WRONLY_PROG", "CLONE", "MMAPABLE", "PRESERVE_ELEMS", "INNER_MAP", "LINK",
	"PATH_FD", "VTYPE_BTF_OBJ_FD", "TOKEN_FD", "SEGV_ON_FAULT", "NO_USER_CONV", "RB_OVERWRITE"}

func createFlagsString(f uint32) string {
	if f == 0 {
		return "0"
	}
	s := ""
	for i := 0; i < 32; i++ {
		if f&(1<<i) == 0 {
			continue
		}
		if s != "" {
			s += "|"
		}
		if i < len(createFlagNames) {
			s += createFlagNames[i]
		} else {
			s += fmt.Sprintf("1<<%d", i)
		}
	}
	return s
}

func elemFlagsString(f uint64) string {
	names := map[uint64]string{0: "BPF_ANY", 1: "BPF_NOEXIST", 2: "BPF_EXIST", 4: "BPF_F_LOCK",
		5: "BPF_F_LOCK|BPF_NOEXIST", 6: "BPF_F_LOCK|BPF_EXIST", 8: "BPF_F_CPU", 16: "BPF_F_ALL_CPUS"}
	if n, ok := names[f]; ok {
		return n
	}
	return fmt.Sprintf("%#x", f)
}

// errName prints an errno with its number, keeping ENOTSUPP (524) and
// EOPNOTSUPP (95) apart.
func errName(e syscall.Errno) string {
	switch e {
	case 0:
		return "OK"
	case ENOTSUPP:
		return "ENOTSUPP(524)"
	case errUnknown:
		return "no-errno"
	}
	if n := unix.ErrnoName(e); n != "" {
		return fmt.Sprintf("%s(%d)", n, int(e))
	}
	return fmt.Sprintf("errno(%d)", int(e))
}

// errnoOf extracts the errno an error of ours matches.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	var x interface{ Errno() unix.Errno }
	if errors.As(err, &x) {
		return x.Errno()
	}
	for n := 1; n < 600; n++ {
		if errors.Is(err, syscall.Errno(n)) {
			return syscall.Errno(n)
		}
	}
	return errUnknown
}

// target is one side's map handle: the kernel's fd or our maps.Map. Every
// command returns an errno (0 for success).
type target interface {
	lookup(key, value []byte, flags uint64) syscall.Errno
	update(key, value []byte, flags uint64) syscall.Errno
	del(key []byte) syscall.Errno
	nextKey(key, next []byte) syscall.Errno
	lookupAndDelete(key, value []byte, flags uint64) syscall.Errno
	freeze() syscall.Errno
	// Batches return the count the caller sees (for the kernel,
	// batch.count after the call) and the errno.
	lookupBatch(del bool, in, out, keys, values []byte, elemFlags, flags uint64) (int, syscall.Errno)
	updateBatch(keys, values []byte, elemFlags, flags uint64) (int, syscall.Errno)
	deleteBatch(keys []byte, elemFlags, flags uint64) (int, syscall.Errno)
	close()
}

type kernelMap struct {
	fd      int
	keySize int
}

func (k *kernelMap) count(keys []byte) uint32 { return uint32(len(keys) / k.keySize) }

func (k *kernelMap) lookupBatch(del bool, in, out, keys, values []byte, elemFlags, flags uint64) (int, syscall.Errno) {
	cmd := cmdMapLookupBatch
	if del {
		cmd = cmdMapLookupAndDeleteBatch
	}
	n, e := kernelBatch(cmd, k.fd, in, out, keys, values, k.count(keys), elemFlags, flags)
	return int(n), e
}

func (k *kernelMap) updateBatch(keys, values []byte, elemFlags, flags uint64) (int, syscall.Errno) {
	n, e := kernelBatch(cmdMapUpdateBatch, k.fd, nil, nil, keys, values, k.count(keys), elemFlags, flags)
	return int(n), e
}

func (k *kernelMap) deleteBatch(keys []byte, elemFlags, flags uint64) (int, syscall.Errno) {
	n, e := kernelBatch(cmdMapDeleteBatch, k.fd, nil, nil, keys, nil, k.count(keys), elemFlags, flags)
	return int(n), e
}

func (k *kernelMap) lookup(key, value []byte, flags uint64) syscall.Errno {
	return kernelElem(cmdMapLookupElem, k.fd, key, value, flags)
}
func (k *kernelMap) update(key, value []byte, flags uint64) syscall.Errno {
	return kernelElem(cmdMapUpdateElem, k.fd, key, value, flags)
}
func (k *kernelMap) del(key []byte) syscall.Errno {
	return kernelElem(cmdMapDeleteElem, k.fd, key, nil, 0)
}
func (k *kernelMap) nextKey(key, next []byte) syscall.Errno {
	return kernelElem(cmdMapGetNextKey, k.fd, key, next, 0)
}
func (k *kernelMap) lookupAndDelete(key, value []byte, flags uint64) syscall.Errno {
	return kernelElem(cmdMapLookupAndDelete, k.fd, key, value, flags)
}
func (k *kernelMap) freeze() syscall.Errno { return kernelFreeze(k.fd) }

// close closes the fd once.
func (k *kernelMap) close() {
	if k.fd >= 0 {
		unix.Close(k.fd)
		k.fd = -1
	}
}

type userMap struct {
	m *maps.Map
	// lastErr is the last error of ours, for messages.
	lastErr error
}

func (u *userMap) res(err error) syscall.Errno {
	u.lastErr = err
	return errnoOf(err)
}

func (u *userMap) lookup(key, value []byte, flags uint64) syscall.Errno {
	return u.res(u.m.Lookup(key, value, flags))
}
func (u *userMap) update(key, value []byte, flags uint64) syscall.Errno {
	return u.res(u.m.Update(key, value, flags))
}
func (u *userMap) del(key []byte) syscall.Errno { return u.res(u.m.Delete(key)) }
func (u *userMap) nextKey(key, next []byte) syscall.Errno {
	return u.res(u.m.NextKey(key, next))
}
func (u *userMap) lookupAndDelete(key, value []byte, flags uint64) syscall.Errno {
	return u.res(u.m.LookupAndDelete(key, value, flags))
}
func (u *userMap) freeze() syscall.Errno { return u.res(u.m.Freeze()) }

func (u *userMap) lookupBatch(del bool, in, out, keys, values []byte, elemFlags, flags uint64) (int, syscall.Errno) {
	f := u.m.LookupBatch
	if del {
		f = u.m.LookupAndDeleteBatch
	}
	n, err := f(in, out, keys, values, elemFlags, flags)
	return n, u.res(err)
}

func (u *userMap) updateBatch(keys, values []byte, elemFlags, flags uint64) (int, syscall.Errno) {
	n, err := u.m.UpdateBatch(keys, values, elemFlags, flags)
	return n, u.res(err)
}

// deleteBatch passes elem_flags as DeleteBatch's flags (the kernel's
// delete batch checks elem_flags and ignores batch.flags).
func (u *userMap) deleteBatch(keys []byte, elemFlags, flags uint64) (int, syscall.Errno) {
	n, err := u.m.DeleteBatch(keys, elemFlags)
	return n, u.res(err)
}
func (u *userMap) close() { u.m.Close() }

// createKernel creates the kernel map; btf returns a BTF fd for a lock
// layout.
func createKernel(s mapSpec, name string, btf func(valueSize, lockOff uint32) (int, error)) (int, syscall.Errno, error) {
	a := createAttr{MapType: s.Type, KeySize: s.KeySize, ValueSize: s.ValueSize, MaxEntries: s.MaxEntries,
		MapFlags: s.Flags, MapExtra: s.MapExtra, InnerMapFD: uint32(s.InnerFD)}
	copy(a.MapName[:15], name)
	if s.Lock {
		fd, err := btf(s.ValueSize, s.LockOff)
		if err != nil {
			return -1, 0, err
		}
		a.BTFFD, a.BTFKeyTypeID, a.BTFValueTypeID = uint32(fd), 1, 3
		if s.KeySize != 4 {
			a.BTFKeyTypeID = 0 // no key type of that size in our BTF
		}
	}
	fd, e := kernelCreate(&a)
	return fd, e, nil
}

func createUser(r *shm.Region, d *rcu.Domain, s mapSpec, name string) (*maps.Map, error) {
	return maps.Create(r, d, maps.Spec{Name: name, Type: maps.Type(s.Type), KeySize: s.KeySize, ValueSize: s.ValueSize,
		MaxEntries: s.MaxEntries, Flags: s.Flags, MapExtra: s.MapExtra, HasLock: s.Lock, LockOffset: s.LockOff,
		InnerMap: s.InnerMap})
}
