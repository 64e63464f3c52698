package maps

import (
	"sync/atomic"
	"unsafe"
)

// descMagic opens every map descriptor ("UMAP").
const descMagic = 0x50414d55

// descVersion is the descriptor layout version.
const descVersion = 2

// noLock in LockOff means the value has no bpf_spin_lock.
const noLock = ^uint32(0)

// desc is a map's descriptor: a 256-byte region block, published in the
// region's directory under the map's name. Everything a process needs to
// use the map is here; the immutable part is validated once at open.
//
//	0   Magic u32       "UMAP"
//	4   Version u32     descVersion
//	8   Type u32        enum bpf_map_type
//	12  KeySize u32
//	16  ValueSize u32
//	20  MaxEntries u32  as the kernel reports it (after LRU rounding)
//	24  Flags u32       map_flags without RDONLY/WRONLY
//	28  LockOff u32     offset of the bpf_spin_lock in the value, or noLock
//	32  NCPU u32        per-CPU copies of each value (the region's CPUs)
//	36  Seed u32        hash seed (0 with BPF_F_ZERO_SEED)
//	40  NBuckets u32    hash: buckets, a power of two
//	44  ElemSize u32    hash: bytes per element's hot part; array: value stride
//	48  Data u64        array: values; hash: buckets
//	56  Pool u64        hash: the preallocated elements' hot parts
//	64  PoolLen u32     hash: elements in the pool
//	68  Frozen u32      1 once frozen (never cleared)
//	72  Count i64       hash: elements linked in buckets
//	80  Lists           hash: the element lists (elemLists: Free, Limbo, Clock)
//	104 Parts u64       LRU with BPF_F_NO_COMMON_LRU: ncpu × 64-byte elemLists, one per CPU
//	112 Meta u64        map-in-map: the inner-map template (innerMeta)
//	120 OuterRefs u32   outer-map slots holding this map (futex word: 0 wakes WaitUnreferenced)
//	124 ID u32          the map's ID in its region
//	128 Watch u64       the map's event log for watchers (watchLog), 0 until the first Watch
//	136 Format u64      a block describing the key and value types (JSON), 0 if unknown
//	144 FormatLen u32
//	148 (padding) u32
//	152 Graph u64       the value's graph type table (graph.Table), 0 without containers
//	160 Cold u64        hash: the preallocated elements' cold parts
//	168 (reserved to 256)
type desc struct {
	Magic      uint32
	Version    uint32
	Type       uint32
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      uint32
	LockOff    uint32
	NCPU       uint32
	Seed       uint32
	NBuckets   uint32
	ElemSize   uint32
	Data       uint64
	Pool       uint64
	PoolLen    uint32
	Frozen     atomic.Uint32
	Count      atomic.Int64
	Lists      elemLists
	Parts      uint64
	Meta       uint64
	OuterRefs  atomic.Uint32
	ID         uint32
	Watch      atomic.Uint64
	Format     atomic.Uint64
	FormatLen  atomic.Uint32
	_          uint32
	Graph      uint64
	Cold       uint64
	_          [88]byte
}

const descSize = 256

var _ [descSize - unsafe.Sizeof(desc{})]byte
var _ [unsafe.Sizeof(desc{}) - descSize]byte
