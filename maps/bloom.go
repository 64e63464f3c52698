package maps

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// bloomOps implements BLOOM_FILTER (kernel/bpf/bloom_filter.c). It is
// key-less: update (push) adds a value, lookup (peek) tests one, the value
// buffer being an input. There are no false negatives; false positives
// depend on the size.
//
// The bit array is the kernel's, bit for bit: max_entries × nr_hash × 7/5
// bits rounded up to a power of two (at least 64; 2^32 when that
// overflows), and value v sets bits jhash2(v, seed+i) & mask (jhash for a
// value size that is not a multiple of 4) for i in 0..nr_hash-1. With
// BPF_F_ZERO_SEED the seed is 0 and a filter holds exactly the bits the
// kernel's would, so both give the same false positives.
//
// Storage is one region block (Data):
//
//	0   NHash u32   hash functions (map_extra bits 0-3, 0 meaning 5)
//	4   Mask u32    bit index mask: bits - 1
//	8   Extra u64   map_extra as given at creation
//	16  (reserved)
//	64  Bits        round_up(bits/8, 8) bytes, as 64-bit words; bit b is
//	                bit b%64 of word b/64 (the kernel's unsigned long bitmap)
//
// The seed is the descriptor's Seed. There is no lock: a push sets its bits
// with atomic ORs (the kernel's set_bit), a peek reads them. Bits are never
// cleared, so concurrent pushes and peeks need no ordering beyond that; a
// process killed in the middle of a push leaves some of its bits set, which
// can only add false positives, never lose a value whose push returned.
type bloomOps struct{}

// bloomHeader is the head of a bloom filter's block (see bloomOps).
type bloomHeader struct {
	NHash uint32
	Mask  uint32
	Extra uint64
}

const bloomHeaderSize = 64

// bloomCreateFlags is BLOOM_CREATE_FLAG_MASK.
const bloomCreateFlags = FlagNumaNode | FlagZeroSeed | flagAccessMask

// bloomDefaultHashes is the number of hash functions when map_extra is 0.
const bloomDefaultHashes = 5

func (b bloomOps) allocCheck(s *Spec, ncpu int) error {
	// bloom_map_alloc_check (E2BIG) runs before bloom_map_alloc (EINVAL).
	switch {
	case s.ValueSize > kmallocMaxSize:
		return fmt.Errorf("%w: value size %d is above KMALLOC_MAX_SIZE", ErrFull, s.ValueSize)
	case s.KeySize != 0 || s.ValueSize == 0 || s.MaxEntries == 0 || s.Flags&^bloomCreateFlags != 0 || !accessOK(s.Flags):
		return fmt.Errorf("%w: bloom_filter needs key 0, value > 0, entries > 0 and flags within NUMA_NODE, ZERO_SEED and the access flags (got key %d value %d entries %d flags %#x)",
			ErrInvalid, s.KeySize, s.ValueSize, s.MaxEntries, s.Flags)
	case s.MapExtra&^0xf != 0:
		return fmt.Errorf("%w: map_extra %#x: only bits 0-3 (the number of hash functions) may be set", ErrInvalid, s.MapExtra)
	}
	return nil
}

// bloomGeometry is bloom_map_alloc's sizing: the number of hash functions
// and the bit index mask.
func bloomGeometry(maxEntries uint32, extra uint64) (nHash, mask uint32) {
	nHash = uint32(extra & 0xf)
	if nHash == 0 {
		nHash = bloomDefaultHashes
	}
	hi, nBits := bits.Mul32(maxEntries, nHash)
	hi2, nBits7 := bits.Mul32(nBits/5, 7)
	if hi != 0 || hi2 != 0 || nBits7 > 1<<31 {
		return nHash, 1<<32 - 1 // 2^32 bits
	}
	nBits = nBits7
	if nBits <= 64 {
		nBits = 64
	} else {
		nBits = 1 << bits.Len32(nBits-1)
	}
	return nHash, nBits - 1
}

// bitsetBytes is the size of the bit array for mask.
func bloomBitsetBytes(mask uint32) uint64 {
	n := (uint64(mask) + 1 + 7) / 8
	return (n + 7) &^ 7
}

// alloc allocates the filter for the spec's map_extra, which the
// descriptor does not hold: the filter's header keeps it.
func (b bloomOps) alloc(m *Map) error {
	extra := m.creating.MapExtra
	nHash, mask := bloomGeometry(m.maxEntries, extra)
	off, err := m.region.Alloc(bloomHeaderSize + bloomBitsetBytes(mask))
	if err != nil {
		return fmt.Errorf("%w: bit array of %d bits: %v", ErrNoMemory, uint64(mask)+1, err)
	}
	h := (*bloomHeader)(m.region.Pointer(off))
	h.NHash, h.Mask, h.Extra = nHash, mask, extra
	if m.flags&FlagZeroSeed == 0 {
		var s [4]byte
		rand.Read(s[:])
		m.d.Seed = binary.NativeEndian.Uint32(s[:])
	}
	m.d.Data = off
	return nil
}

func (b bloomOps) free(m *Map) { m.region.Free(m.d.Data) }

func (b bloomOps) header(m *Map) *bloomHeader { return (*bloomHeader)(m.region.Pointer(m.d.Data)) }

func (b bloomOps) validate(m *Map) error {
	if m.d.KeySize != 0 || m.d.ValueSize == 0 || m.d.MaxEntries == 0 {
		return fmt.Errorf("bad bloom filter geometry")
	}
	if _, err := m.region.Bytes(m.d.Data, bloomHeaderSize); err != nil {
		return err
	}
	h := b.header(m)
	if nHash, mask := bloomGeometry(m.d.MaxEntries, h.Extra); h.NHash != nHash || h.Mask != mask {
		return fmt.Errorf("bad bloom filter geometry")
	}
	_, err := m.region.Bytes(m.d.Data, bloomHeaderSize+bloomBitsetBytes(h.Mask))
	return err
}

// word returns the bit array word holding bit n.
func (b bloomOps) word(m *Map, n uint32) *atomic.Uint64 {
	return (*atomic.Uint64)(m.region.Pointer(m.d.Data + bloomHeaderSize + uint64(n/64)*8))
}

// bit is the kernel's hash(): bit index i of value.
func (b bloomOps) bit(m *Map, h *bloomHeader, value []byte, i uint32) uint32 {
	seed := m.d.Seed + i
	if len(value)%4 == 0 {
		return jhash2(value, seed) & h.Mask
	}
	return jhash(value, seed) & h.Mask
}

func (b bloomOps) lookupElem(m *Map, key []byte) unsafe.Pointer { return nil }

// update is push: it sets the value's bits. Only BPF_ANY is allowed.
func (b bloomOps) update(m *Map, key, value []byte, flags uint64) error {
	if flags != UpdateAny {
		return fmt.Errorf("%w: bloom filter push flags %#x (only BPF_ANY)", ErrInvalid, flags)
	}
	h := b.header(m)
	for i := uint32(0); i < h.NHash; i++ {
		n := b.bit(m, h, value, i)
		b.word(m, n).Or(1 << (n % 64))
	}
	return nil
}

// lookupCopy is peek: value is the input; ENOENT if one of its bits is
// clear (certainly never pushed), nil otherwise (maybe pushed).
func (b bloomOps) lookupCopy(m *Map, key, value []byte, flags uint64) error {
	h := b.header(m)
	for i := uint32(0); i < h.NHash; i++ {
		n := b.bit(m, h, value, i)
		if b.word(m, n).Load()&(1<<(n%64)) == 0 {
			return fmt.Errorf("%w: the value is not in the bloom filter", ErrKeyNotExist)
		}
	}
	return nil
}

func (b bloomOps) delete(m *Map, key []byte) error {
	return fmt.Errorf("%w: values cannot be removed from a bloom filter", ErrOpNotSupported)
}

func (b bloomOps) nextKey(m *Map, key, next []byte) error {
	return fmt.Errorf("%w: a bloom filter has no keys", ErrOpNotSupported)
}

func (b bloomOps) hasBatch(batchCmd) bool { return false }

// MapExtra is the map's map_extra: for a bloom filter the number of hash
// functions given at creation (0 meaning the default, 5); 0 for the other
// types.
func (m *Map) MapExtra() uint64 {
	if _, ok := m.ops.(bloomOps); !ok {
		return 0
	}
	return bloomOps{}.header(m).Extra
}
