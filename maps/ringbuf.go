package maps

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/shm"
)

// ringbufOps implements RINGBUF and USER_RINGBUF (kernel/bpf/ringbuf.c).
//
// A ring buffer has no elements: every element command is ENOTSUPP (524),
// as in the kernel. Its memory is one region block laid out as the kernel
// lays out the mmap()ed ring (RingConsumerPage, RingProducerPage, then the
// data area); package ringbuf implements the producer and consumer
// protocols on it.
type ringbufOps struct{ user bool }

// Ring buffer geometry.
const (
	// RingPageSize is the size of the consumer and producer pages, and the
	// unit max_entries must be a multiple of (the kernel's PAGE_SIZE).
	RingPageSize = 4096
	// RingDataOff is the offset of the data area in the ring's block.
	RingDataOff = 2 * RingPageSize
	// RingHeaderSize is the size of a record header (BPF_RINGBUF_HDR_SZ).
	RingHeaderSize = 8
	// RingBusyBit marks a record reserved and not yet committed
	// (BPF_RINGBUF_BUSY_BIT).
	RingBusyBit = 1 << 31
	// RingDiscardBit marks a record discarded by its producer
	// (BPF_RINGBUF_DISCARD_BIT).
	RingDiscardBit = 1 << 30
	// RingLenMask selects a record's payload length in its header.
	RingLenMask = RingDiscardBit - 1
)

// The memory of a ring buffer of size S bytes (max_entries: a power of two,
// a multiple of 4 KiB) is one run of region spans (64 KiB aligned, so both
// pages and the data area are page-aligned):
//
//	block offset   size   contents
//	0              4 KiB  consumer page (RingConsumerPage), written by the consumer
//	4 KiB          4 KiB  producer page (RingProducerPage), written by producers
//	8 KiB          S      data area: records, at logical positions modulo S
//
// As in the kernel, positions are 64-bit counters that only grow; a
// position p lives at data[p & (S-1)]. Every process that uses the ring
// maps the data area a second time right after itself (mremap of the
// region's pages), so a record that wraps around the end is contiguous in
// memory, as the kernel's double mapping makes it.
//
// A record is an 8-byte header and its payload, padded to a multiple of 8
// bytes: it takes round_up(len + 8, 8) bytes, so every header is 8-byte
// aligned and never wraps.
//
//	0      4        8
//	+------+--------+------------------------+
//	| len  | pg_off | payload (len bytes)... |
//	+------+--------+------------------------+
//	len:    bit 31 BUSY (reserved, not committed), bit 30 DISCARD, bits 0-29 length
//	pg_off: the kernel's page offset of the header from its ring; here the
//	        owner tag of the process that reserved the record, so that a
//	        consumer finding it BUSY can ask whether that process still lives
//	        (consumers of the kernel's layout ignore the field).
//
// Capacity (kernel rules): a RINGBUF reservation may not take the producer
// position more than S-1 bytes past the consumer position, nor past the
// oldest record still BUSY (the pending position); a USER_RINGBUF may fill
// all S bytes (libbpf's user_ring_buffer__reserve).

// RingConsumerPage is the first page of a ring buffer's block (4 KiB).
//
//	0    ConsPos u64     consumer position (the kernel's consumer_pos, at offset 0)
//	64   Seq u32         futex word consumers sleep on; a producer that wakes them bumps it
//	68   Sleepers u32    consumers asleep on Seq (or about to be): producers wake only if non-zero
//	128  Owner u32       tag of the process holding the consumer side, 0 if none
//	132  Takeovers u32   consumer sides taken over from dead processes
type RingConsumerPage struct {
	ConsPos   atomic.Uint64
	_         [56]byte
	Seq       atomic.Uint32
	Sleepers  atomic.Uint32
	_         [56]byte
	Owner     atomic.Uint32
	Takeovers atomic.Uint32
	_         [RingPageSize - 136]byte
}

// RingProducerPage is the second page of a ring buffer's block (4 KiB).
//
//	0    ProdPos u64     producer position (the kernel's producer_pos, at offset 0)
//	64   Lock u32        producers' spin lock (a lock.SpinLock: owner tag, recovered from dead owners)
//	72   PendPos u64     oldest record possibly still BUSY (the kernel's pending_pos); under Lock
//	80   ConsCache u64   consumer position last read by a producer (never ahead of ConsPos); under Lock
//	128  Drops u64       reservations refused for lack of space
//	136  Wakeups u64     futex wake calls producers made
//	144  Recovered u64   BUSY records of dead producers a consumer discarded
//	192  SpaceSeq u32    futex word for producers waiting for room; a drain of a user ring bumps
//	                     it and wakes them (the kernel's EPOLLOUT) when SpaceSleepers is non-zero
//	196  SpaceSleepers u32  producers asleep on SpaceSeq (none yet: producers do not block)
type RingProducerPage struct {
	ProdPos       atomic.Uint64
	_             [56]byte
	Lock          lock.SpinLock
	_             uint32
	PendPos       uint64
	ConsCache     uint64
	_             [40]byte
	Drops         atomic.Uint64
	Wakeups       atomic.Uint64
	Recovered     atomic.Uint64
	_             [40]byte
	SpaceSeq      atomic.Uint32
	SpaceSleepers atomic.Uint32
	_             [RingPageSize - 200]byte
}

var (
	_ [RingPageSize - unsafe.Sizeof(RingConsumerPage{})]byte
	_ [unsafe.Sizeof(RingConsumerPage{}) - RingPageSize]byte
	_ [RingPageSize - unsafe.Sizeof(RingProducerPage{})]byte
	_ [unsafe.Sizeof(RingProducerPage{}) - RingPageSize]byte
)

// ringbufCreateFlags is RINGBUF_CREATE_FLAG_MASK of Linux 6.18: NUMA only.
// BPF_F_RB_OVERWRITE is newer than 6.18, which refuses it (EINVAL), as do
// the access flags (BPF_F_RDONLY ... the ring's mask has none of them).
const ringbufCreateFlags = FlagNumaNode

func (o ringbufOps) allocCheck(s *Spec, ncpu int) error {
	switch {
	case s.Flags&^ringbufCreateFlags != 0:
		return fmt.Errorf("%w: %s accepts only BPF_F_NUMA_NODE (flags %#x)", ErrInvalid, s.Type, s.Flags)
	case s.KeySize != 0 || s.ValueSize != 0:
		return fmt.Errorf("%w: %s needs key and value sizes 0 (got %d and %d)", ErrInvalid, s.Type, s.KeySize, s.ValueSize)
	case s.MaxEntries == 0 || s.MaxEntries&(s.MaxEntries-1) != 0 || s.MaxEntries%RingPageSize != 0:
		return fmt.Errorf("%w: %s size (max_entries) %d must be a power of 2 and a multiple of %d",
			ErrInvalid, s.Type, s.MaxEntries, RingPageSize)
	case s.HasLock:
		return fmt.Errorf("%w: %s has no values to hold a bpf_spin_lock", ErrInvalid, s.Type)
	}
	return nil
}

// ringBlockSize is the size of the ring's block; it is always a run of
// spans (page-aligned), never a size-class block.
func ringBlockSize(size uint32) uint64 {
	return max(RingDataOff+uint64(size), shm.MaxClassSize+1)
}

func (o ringbufOps) alloc(m *Map) error {
	n := ringBlockSize(m.maxEntries)
	off, err := m.region.Alloc(n)
	if err != nil {
		return fmt.Errorf("%w: %d bytes of ring buffer: %v", ErrNoMemory, n, err)
	}
	m.d.Data = off
	return nil
}

func (o ringbufOps) free(m *Map) { m.region.Free(m.d.Data) }

// validate checks the geometry another process wrote before any offset in
// it is trusted.
func (o ringbufOps) validate(m *Map) error {
	d := m.d
	if d.KeySize != 0 || d.ValueSize != 0 || d.MaxEntries < RingPageSize ||
		d.MaxEntries&(d.MaxEntries-1) != 0 || d.Data%RingPageSize != 0 {
		return fmt.Errorf("bad ring buffer geometry")
	}
	_, err := m.region.Bytes(d.Data, RingDataOff+uint64(d.MaxEntries))
	return err
}

func (o ringbufOps) lookupElem(m *Map, key []byte) unsafe.Pointer { return nil }

func (o ringbufOps) lookupCopy(m *Map, key, value []byte, flags uint64) error {
	return fmt.Errorf("%w: a ring buffer has no elements", ErrNotSupported)
}

func (o ringbufOps) update(m *Map, key, value []byte, flags uint64) error {
	return fmt.Errorf("%w: a ring buffer has no elements", ErrNotSupported)
}

func (o ringbufOps) delete(m *Map, key []byte) error {
	return fmt.Errorf("%w: a ring buffer has no elements", ErrNotSupported)
}

func (o ringbufOps) nextKey(m *Map, key, next []byte) error {
	return fmt.Errorf("%w: a ring buffer has no keys", ErrNotSupported)
}

func (o ringbufOps) lookupAndDelete(m *Map, key, value []byte, flags uint64) error {
	return fmt.Errorf("%w: a ring buffer has no elements", ErrNotSupported)
}

// hasBatch: a ring buffer has no batch commands (ENOTSUPP, as the kernel's
// ringbuf_map_ops set none).
func (o ringbufOps) hasBatch(batchCmd) bool { return false }

// RingMemory is where a ring buffer map's memory lies in its region.
type RingMemory struct {
	// Region is the region holding the ring.
	Region *shm.Region
	// Off is the offset of the ring's block: the consumer page, then the
	// producer page, then the data area.
	Off uint64
	// Size is the data area's size in bytes (max_entries).
	Size uint64
	// User is true for a USER_RINGBUF.
	User bool
}

// Consumer returns the ring's consumer page.
func (r RingMemory) Consumer() *RingConsumerPage {
	return (*RingConsumerPage)(r.Region.Pointer(r.Off))
}

// Producer returns the ring's producer page.
func (r RingMemory) Producer() *RingProducerPage {
	return (*RingProducerPage)(r.Region.Pointer(r.Off + RingPageSize))
}

// Data returns a pointer to the start of the ring's data area.
func (r RingMemory) Data() unsafe.Pointer { return r.Region.Pointer(r.Off + RingDataOff) }

// RingMemory returns where a RINGBUF or USER_RINGBUF map's memory is. write
// says the caller will write the ring's shared state (consume a RINGBUF, or
// produce into a USER_RINGBUF): that needs a writable handle on a map that
// is not frozen (ErrPermission otherwise), as the kernel refuses a writable
// mmap() of such a map. Other map types give ErrInvalid.
func (m *Map) RingMemory(write bool) (RingMemory, error) {
	o, ok := m.ops.(ringbufOps)
	if !ok {
		return RingMemory{}, m.errorf("ring buffer", fmt.Errorf("%w: map type %s is not a ring buffer", ErrInvalid, m.typ))
	}
	if write {
		if err := m.writable(); err != nil {
			return RingMemory{}, m.errorf("ring buffer", err)
		}
	}
	return RingMemory{Region: m.region, Off: m.d.Data, Size: uint64(m.maxEntries), User: o.user}, nil
}
