package shm

import (
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/lock"
)

// Region file layout. All integers are little-endian (the host's: regions
// are shared between processes of one machine, never moved between machines).
//
//	offset                     size                 contents
//	0                          4 KiB                header (struct header)
//	ProcOff   = 4 KiB          MaxProcs × 64 B      process table (procSlot)
//	ReaderOff                  MaxReaders × 16 B    RCU reader slots (ReaderSlot)
//	VCPUOff                    ncpu × 64 B, page-rounded   virtual CPUs (vcpuSlot)
//	DirOff                     DirEntries × 128 B   object directory (dirEntry)
//	SpanOff                    MaxSpans × 1 B, page-rounded span table
//	HeapOff (64 KiB aligned)   Brk × 64 KiB         heap: spans of blocks, runs of spans
//
// Everything below HeapOff is written at creation and backed at once; the
// heap is backed (fallocate) as Brk grows, never past Limit.
const (
	// Magic opens every region file.
	Magic = "UBPFRGN\x00"
	// FormatVersion is the layout version this package reads and writes.
	FormatVersion = 1

	headerSize = 4096
	pageSize   = 4096

	// SpanSize is the heap's unit of growth and of large allocations.
	SpanSize = 64 << 10

	// MaxProcs is the size of the process table. Slot 0 is never used, so
	// a tag's slot field is never zero.
	MaxProcs = 1024
	// MaxReaders is the number of RCU reader slots.
	MaxReaders = 4096
	// MaxCPUs bounds the number of virtual CPUs of a region.
	MaxCPUs = 1024
	// DirEntries is the capacity of the object directory.
	DirEntries = 1024
	// MaxNameLen is the longest object name the directory stores.
	MaxNameLen = 95

	// DefaultLimit is the size limit (and virtual reservation) of a region
	// created without one.
	DefaultLimit = 64 << 30
	// MaxLimit is the largest size limit a region may have (offsets are
	// 40 bits wide in tagged free-list heads).
	MaxLimit = 1 << 40
	// minHeap is the least heap a region must be able to hold.
	minHeap = 4 * SpanSize
)

// header is the first page of a region.
//
//	0    Magic [8]         "UBPFRGN\0"
//	8    Version u32       FormatVersion
//	12   HeaderSize u32    4096
//	16   PageSize u32      4096
//	20   SpanSize u32      65536
//	24   NumCPU u32        virtual CPUs
//	28   MaxProcs u32      process-table slots
//	32   MaxReaders u32    RCU reader slots
//	36   DirEntries u32    directory capacity
//	40   Limit u64         size limit = virtual reservation, bytes
//	48   ProcOff … HeapOff u64 ×6   table offsets (see the file layout)
//	96   MaxSpans u64      span-table entries = (Limit-HeapOff)/SpanSize
//	104  Created i64       unix nanoseconds
//	112  Mode u32          file mode at creation
//	128  FileSize u64      bytes of the file known to be backed (only grows)
//	136  Brk u64           spans handed out to the heap (only grows)
//	192  Counters [16]u64  statistics (Counter*)
//	320  Epoch u64         RCU global epoch
//	328  Completed u64     RCU: blocks retired before this epoch may be freed
//	336  ReaderHigh u32    RCU: reader slots in use are below this index
//	340  LastID u32        the last object ID handed out (map IDs, as the kernel's)
//	384  VCPUSeq u32       futex word bumped when a virtual CPU is released to waiters
//	388  VCPUWaiters u32   processes sleeping for a virtual CPU
//	392  DirLock u32       lock.Mutex guarding the directory
//	448  ClassHead [12]    tagged free-list heads, one 64-byte line each
//	1216 RunHead [52]u64   tagged free-list heads of span runs
//	1632 Carve [12]u64     per class: offset of the next unused block of its carving span, 0 if none
type header struct {
	Magic      [8]byte
	Version    uint32
	HeaderSize uint32
	PageSize   uint32
	SpanSize   uint32
	NumCPU     uint32
	MaxProcs   uint32
	MaxReaders uint32
	DirEntries uint32
	Limit      uint64
	ProcOff    uint64
	ReaderOff  uint64
	VCPUOff    uint64
	DirOff     uint64
	SpanOff    uint64
	HeapOff    uint64
	MaxSpans   uint64
	Created    int64
	Mode       uint32
	_          [12]byte

	FileSize atomic.Uint64
	Brk      atomic.Uint64
	_        [48]byte

	Counters [16]atomic.Uint64

	Epoch      atomic.Uint64
	Completed  atomic.Uint64
	ReaderHigh atomic.Uint32
	LastID     atomic.Uint32
	_          [40]byte

	VCPUSeq     atomic.Uint32
	VCPUWaiters atomic.Uint32
	DirLock     lock.Mutex
	_           [52]byte

	ClassHead [numClasses]paddedHead
	RunHead   [numRunLists]atomic.Uint64
	Carve     [numClasses]atomic.Uint64
}

// paddedHead keeps each size class's free-list head on its own cache line.
type paddedHead struct {
	v atomic.Uint64
	_ [56]byte
}

// Counter indexes header.Counters.
type Counter int

// Statistics kept in the header, shown by `userbpf region show`.
const (
	CounterSpinRecoveries  Counter = iota // value locks taken over from dead owners
	CounterMutexRecoveries                // mutexes taken over from dead owners
	CounterProcsReaped                    // dead processes removed from the table
	CounterReadersReaped                  // RCU reader slots of dead processes cleared
	CounterLeasesReaped                   // virtual CPUs taken back from dead processes
	CounterLeaksRecovered                 // blocks a dead process held mid-allocation, freed again
	CounterGracePeriods                   // completed Synchronize calls
	CounterFullErrors                     // allocations refused because the region was full
	numCounters
)

// procSlot is one process-table entry (64 bytes).
//
//	0   Word u64        bits 0-1 state (free, alive, reaping), 2-21 generation, 32-63 pid (reaper tag while reaping)
//	8   Start u64       process start time, clock ticks after boot (/proc/PID/stat field 22); 0 while free
//	16  — u32           unused (was the reaper's tag, now in Word)
//	24  AllocInflight u64  block this process took off a free list and has not yet returned
//	32  RetireRing u64  offset of the process's RCU retire ring, 0 if none
//	40  Attached i64    unix nanoseconds
type procSlot struct {
	Word          atomic.Uint64
	Start         atomic.Uint64
	_             uint32
	_             uint32
	AllocInflight atomic.Uint64
	RetireRing    atomic.Uint64
	Attached      atomic.Int64
	_             [16]byte
}

// ReaderSlot is one RCU reader slot (16 bytes). Owner is the tag of the
// process that holds the slot (0: free); Epoch is the global epoch the
// reader saw when it entered its read-side section (0: not reading).
type ReaderSlot struct {
	Epoch atomic.Uint64
	Owner atomic.Uint32
	_     uint32
}

// vcpuSlot is one virtual CPU (64 bytes, one cache line).
//
//	0  Owner u32   tag of the leasing process, 0 if free
//	8  Leases u64  times this CPU was leased
type vcpuSlot struct {
	Owner  atomic.Uint32
	_      uint32
	Leases atomic.Uint64
	_      [48]byte
}

// dirEntry is one object-directory entry (128 bytes), guarded by DirLock.
//
//	0   State u32   0 free, 1 used (written last on insert, first on removal)
//	4   Kind u32    caller-defined object kind
//	8   Off u64     offset of the object's descriptor in the heap
//	16  Size u64    size of the descriptor
//	24  NameLen u32
//	32  Name [96]   NUL-padded
type dirEntry struct {
	State   atomic.Uint32
	Kind    uint32
	Off     uint64
	Size    uint64
	NameLen uint32
	_       uint32
	Name    [MaxNameLen + 1]byte
}

// Compile-time layout checks.
var (
	_ [headerSize - unsafe.Sizeof(header{})]byte
	_ [64 - unsafe.Sizeof(procSlot{})]byte
	_ [unsafe.Sizeof(procSlot{}) - 64]byte
	_ [16 - unsafe.Sizeof(ReaderSlot{})]byte
	_ [unsafe.Sizeof(ReaderSlot{}) - 16]byte
	_ [64 - unsafe.Sizeof(vcpuSlot{})]byte
	_ [unsafe.Sizeof(vcpuSlot{}) - 64]byte
	_ [128 - unsafe.Sizeof(dirEntry{})]byte
	_ [unsafe.Sizeof(dirEntry{}) - 128]byte
)

// layout is the set of table offsets derived from a region's parameters.
type layout struct {
	procOff, readerOff, vcpuOff, dirOff, spanOff, heapOff, maxSpans uint64
}

func roundUp(x, to uint64) uint64 { return (x + to - 1) / to * to }

// computeLayout places the tables for ncpu virtual CPUs and a size limit.
// It is the single source of the layout: Open recomputes it and compares.
func computeLayout(ncpu uint32, limit uint64) layout {
	var l layout
	l.procOff = headerSize
	l.readerOff = l.procOff + MaxProcs*64
	l.vcpuOff = l.readerOff + MaxReaders*16
	l.dirOff = l.vcpuOff + roundUp(uint64(ncpu)*64, pageSize)
	l.spanOff = l.dirOff + DirEntries*128
	// The span table covers every span the heap could ever hold; it is
	// sized from an upper bound and the heap starts after it.
	bound := limit / SpanSize
	l.heapOff = roundUp(l.spanOff+roundUp(bound, pageSize), SpanSize)
	if l.heapOff < limit {
		l.maxSpans = (limit - l.heapOff) / SpanSize
	}
	return l
}
