package conformance

import (
	"encoding/binary"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpf(2) commands used by the suite (enum bpf_cmd).
const (
	cmdMapCreate          = 0
	cmdMapLookupElem      = 1
	cmdMapUpdateElem      = 2
	cmdMapDeleteElem      = 3
	cmdMapGetNextKey      = 4
	cmdMapGetFDByID       = 14
	cmdObjGetInfoByFD     = 15
	cmdBTFLoad            = 18
	cmdMapLookupAndDelete = 21
	cmdMapFreeze          = 22
)

// createAttr is the MAP_CREATE part of union bpf_attr, up to map_extra.
type createAttr struct {
	MapType             uint32
	KeySize             uint32
	ValueSize           uint32
	MaxEntries          uint32
	MapFlags            uint32
	InnerMapFD          uint32
	NumaNode            uint32
	MapName             [16]byte
	MapIfindex          uint32
	BTFFD               uint32
	BTFKeyTypeID        uint32
	BTFValueTypeID      uint32
	BTFVmlinuxValueType uint32
	MapExtra            uint64
	ValueTypeBTFObjFD   int32
	MapTokenFD          int32
	_                   [48]byte // later fields, zero
}

// elemAttr is the element-command part of union bpf_attr. Pointers are
// unsafe.Pointer so that the garbage collector keeps (and moves) them.
type elemAttr struct {
	MapFD uint32
	_     uint32
	Key   unsafe.Pointer
	Value unsafe.Pointer // next_key for GET_NEXT_KEY
	Flags uint64
	_     [32]byte
}

type getIDAttr struct {
	ID        uint32
	NextID    uint32
	OpenFlags uint32
	_         [52]byte
}

type infoAttr struct {
	FD      uint32
	InfoLen uint32
	Info    unsafe.Pointer
	_       [48]byte
}

type btfLoadAttr struct {
	BTF      unsafe.Pointer
	LogBuf   unsafe.Pointer
	BTFSize  uint32
	LogSize  uint32
	LogLevel uint32
	_        [44]byte
}

// mapInfo is the head of struct bpf_map_info.
type mapInfo struct {
	Type       uint32
	ID         uint32
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	MapFlags   uint32
	Name       [16]byte
	_          [64]byte
}

func bpfCall(cmd int, attr unsafe.Pointer, size uintptr) (int, syscall.Errno) {
	r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if e != 0 {
		return -1, e
	}
	return int(r), 0
}

// ptr returns a pointer to b's first byte, nil for a nil slice (a NULL
// pointer for the kernel), and a pointer to a zero-size dummy for an empty
// non-nil slice.
func ptr(b []byte) unsafe.Pointer {
	if b == nil {
		return nil
	}
	if len(b) == 0 {
		return unsafe.Pointer(&zeroByte)
	}
	return unsafe.Pointer(&b[0])
}

var zeroByte byte

func kernelCreate(a *createAttr) (int, syscall.Errno) {
	fd, e := bpfCall(cmdMapCreate, unsafe.Pointer(a), unsafe.Sizeof(*a))
	runtime.KeepAlive(a)
	return fd, e
}

func kernelElem(cmd int, fd int, key, value []byte, flags uint64) syscall.Errno {
	a := elemAttr{MapFD: uint32(fd), Key: ptr(key), Value: ptr(value), Flags: flags}
	_, e := bpfCall(cmd, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return e
}

func kernelFreeze(fd int) syscall.Errno {
	a := elemAttr{MapFD: uint32(fd)}
	_, e := bpfCall(cmdMapFreeze, unsafe.Pointer(&a), unsafe.Sizeof(a))
	return e
}

func kernelInfo(fd int) (mapInfo, syscall.Errno) {
	var info mapInfo
	a := infoAttr{FD: uint32(fd), InfoLen: uint32(unsafe.Sizeof(info)), Info: unsafe.Pointer(&info)}
	_, e := bpfCall(cmdObjGetInfoByFD, unsafe.Pointer(&a), unsafe.Sizeof(a))
	return info, e
}

// kernelReopen returns a second fd on the map behind fd, with open_flags
// (BPF_F_RDONLY / BPF_F_WRONLY) selecting its mode.
func kernelReopen(fd int, openFlags uint32) (int, syscall.Errno) {
	info, e := kernelInfo(fd)
	if e != 0 {
		return -1, e
	}
	a := getIDAttr{ID: info.ID, OpenFlags: openFlags}
	return bpfCall(cmdMapGetFDByID, unsafe.Pointer(&a), unsafe.Sizeof(a))
}

// BTF kinds and encoding (include/uapi/linux/btf.h).
const (
	btfKindInt    = 1
	btfKindStruct = 4
)

// lockBTF builds a BTF blob with three types: 1 = u32 (the key), 2 =
// struct bpf_spin_lock { u32 val; }, 3 = struct value of valueSize bytes
// with the lock at lockOff and u32 members in the other aligned words.
func lockBTF(valueSize, lockOff uint32) []byte {
	strs := []byte{0}
	str := func(s string) uint32 {
		off := uint32(len(strs))
		strs = append(append(strs, s...), 0)
		return off
	}
	var types []byte
	u32 := func(v uint32) { types = binary.NativeEndian.AppendUint32(types, v) }
	// 1: int u32
	u32(str("u32"))
	u32(btfKindInt << 24)
	u32(4)
	u32(32) // encoding 0, offset 0, bits 32
	// 2: struct bpf_spin_lock
	u32(str("bpf_spin_lock"))
	u32(btfKindStruct<<24 | 1)
	u32(4)
	u32(str("val"))
	u32(1)
	u32(0)
	// 3: struct value
	type member struct{ name, typ, off uint32 }
	var members []member
	for off := uint32(0); off+4 <= valueSize; off += 4 {
		switch {
		case off == lockOff:
			members = append(members, member{str("lock"), 2, off * 8})
		default:
			members = append(members, member{str("w" + itoa(off)), 1, off * 8})
		}
	}
	u32(str("value"))
	u32(btfKindStruct<<24 | uint32(len(members)))
	u32(valueSize)
	for _, mb := range members {
		u32(mb.name)
		u32(mb.typ)
		u32(mb.off)
	}
	var hdr []byte
	hdr = binary.NativeEndian.AppendUint16(hdr, 0xeB9F)
	hdr = append(hdr, 1, 0)
	hdr = binary.NativeEndian.AppendUint32(hdr, 24)
	hdr = binary.NativeEndian.AppendUint32(hdr, 0)
	hdr = binary.NativeEndian.AppendUint32(hdr, uint32(len(types)))
	hdr = binary.NativeEndian.AppendUint32(hdr, uint32(len(types)))
	hdr = binary.NativeEndian.AppendUint32(hdr, uint32(len(strs)))
	return append(append(hdr, types...), strs...)
}

func itoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// loadBTF loads a BTF blob and returns its fd; on failure the verifier log
// is returned too.
func loadBTF(blob []byte) (int, string, syscall.Errno) {
	log := make([]byte, 4096)
	a := btfLoadAttr{BTF: ptr(blob), BTFSize: uint32(len(blob)), LogBuf: ptr(log), LogSize: uint32(len(log)), LogLevel: 1}
	fd, e := bpfCall(cmdBTFLoad, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(blob)
	runtime.KeepAlive(log)
	if e != 0 {
		n := 0
		for n < len(log) && log[n] != 0 {
			n++
		}
		return -1, string(log[:n]), e
	}
	return fd, "", 0
}

// Batch commands.
const (
	cmdMapLookupBatch          = 24
	cmdMapLookupAndDeleteBatch = 25
	cmdMapUpdateBatch          = 26
	cmdMapDeleteBatch          = 27
)

// batchAttr is the batch part of union bpf_attr.
type batchAttr struct {
	InBatch   unsafe.Pointer
	OutBatch  unsafe.Pointer
	Keys      unsafe.Pointer
	Values    unsafe.Pointer
	Count     uint32
	MapFD     uint32
	ElemFlags uint64
	Flags     uint64
	_         [16]byte
}

// kernelBatch runs a batch command; it returns batch.count as the kernel
// left it (the input count if the kernel did not write it) and the errno.
func kernelBatch(cmd, fd int, in, out, keys, values []byte, count uint32, elemFlags, flags uint64) (uint32, syscall.Errno) {
	a := batchAttr{InBatch: ptr(in), OutBatch: ptr(out), Keys: ptr(keys), Values: ptr(values), Count: count,
		MapFD: uint32(fd), ElemFlags: elemFlags, Flags: flags}
	_, e := bpfCall(cmd, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(in)
	runtime.KeepAlive(out)
	runtime.KeepAlive(keys)
	runtime.KeepAlive(values)
	return a.Count, e
}
