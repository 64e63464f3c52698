package maps

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/internal/release"
	"github.com/userbpf/userbpf/lock"
)

// Hash map storage (HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH).
//
// A lookup reads a bucket's head, then the elements of its chain: each
// read is a dependent cache miss once the map outgrows the cache, so what
// readers touch is kept as small as the key and value allow. An element
// has a hot part (link, key, value: all a reader reads) and a cold part
// (what only writers read: free-list link, retire epoch, state, LRU age)
// kept elsewhere. For 64 K elements of 4-byte keys and 8-byte values the
// readers' working set is 1.5 MB (512 KB of buckets, 1 MB of hot parts)
// where one 64-byte element per key made it 5 MB.
//
// Preallocated maps link elements by number (4-byte links: element n,
// counted from 1, 0 ends a chain); maps with BPF_F_NO_PREALLOC, whose
// elements are region blocks anywhere in the heap, by region offset
// (8-byte links, 0 ends a chain).
//
// Buckets (n_buckets = roundup_pow_of_two(max_entries)):
//
//	preallocated, 8 bytes             BPF_F_NO_PREALLOC, 16 bytes
//	+-----------+-----------+         +-----------+-------+-----------+
//	| Lock u32  | Head u32  |         | Lock u32  |  pad  | Head u64  |
//	+-----------+-----------+         +-----------+-------+-----------+
//	0           4           8         0           4       8          16
//
// Lock is a lock.SpinLock word taken by writers; Head links to the newest
// element of the bucket.
//
// Element hot part (ElemSize bytes, a multiple of 8; L is the link size):
//
//	+----------+---------------+-----+------------------------------------+
//	| Next     | Key           | pad | Value                              |
//	| u32/u64  | [key_size]    |     | [round_up(value_size, 8)]          |
//	|          |               |     | (× ncpu for per-CPU maps)          |
//	+----------+---------------+-----+------------------------------------+
//	0          L                     V = round_up(L + key_size, 8)
//
// The value is 8-aligned, so atomics (user space's and programs'
// BPF_ATOMIC) work on its aligned words. A 4-byte key and 8-byte value
// make a 16-byte hot part: elements never straddle a cache line.
//
// Element cold part (elemCold; 8 bytes in a preallocated map that is not
// LRU, else 16):
//
//	0   FreeNext u32  number of the next element on the free or limbo list
//	4   Retired u32   RCU epoch at which it was unlinked, modulo 2^32
//	8   State u32     elemFree / elemLive        (LRU and BPF_F_NO_PREALLOC)
//	12  Ref u32       LRU age (see evict)        (LRU and BPF_F_NO_PREALLOC)
//
// State tells the LRU clock which pool elements are in use; a
// preallocated HASH has no clock, and every element linked in a bucket is
// live by construction (fill runs before the element is published), so it
// keeps no State. The 32-bit epoch is compared within a window (see
// retiredBefore): an element waits in limbo for one grace period, not 2^31.
//
// Where they live:
//
//	preallocated       Pool: PoolLen hot parts (element n at Pool + (n-1)·ElemSize)
//	                   Cold: PoolLen cold parts, in the same order
//	BPF_F_NO_PREALLOC  one region block per element: hot part, then cold part
//
// A preallocated 4/8 HASH element thus costs 16 + 8 bytes plus its share
// of the buckets (8 bytes at 64 K entries): 32 bytes, where the kernel's
// memlock counts 80. An update touches the bucket, the hot part and the
// cold part: 2 MB for 64 K elements.
const (
	coldSize      = 16 // with State and Ref
	coldSizeShort = 8  // FreeNext and Retired only

	elemFree = 0
	elemLive = 1
)

// bucket is the start of a bucket: its lock (the head follows, see
// hashOps.headLink).
type bucket struct {
	Lock lock.SpinLock
}

// elemCold is an element's cold part. Its fields are written with plain
// stores by the writer that owns the element (it took the element off a
// list, or unlinked it under its bucket lock) before an atomic operation
// publishes them (the bucket head store, a list CAS, the lock release);
// writers that do not own it (the LRU clock, a list pop racing a push)
// read them with atomic loads. The plain stores matter: each atomic store
// is a full fence that waits for the value copy's stores and any miss.
type elemCold struct {
	FreeNext uint32
	Retired  uint32
	State    uint32 // only if hashCache.hasState
	Ref      uint32 // only if hashCache.hasState
}

var _ [coldSize - unsafe.Sizeof(elemCold{})]byte

// num is element off's number (narrow maps), 0 for off 0.
func (c *hashCache) num(off uint64) uint32 {
	if off == 0 {
		return 0
	}
	return uint32(c.index(off)) + 1
}

// retiredBefore reports whether an element retired at epoch r (modulo
// 2^32) was retired before epoch done, given that now, read after the
// element was taken off its list, is at least its real epoch: r is too
// recent only if it lies in [done, now], a window as wide as the grace
// periods that ran during one drain. (An element that waited 2^32 grace
// periods could fall in it by chance and wait one drain more.)
func retiredBefore(r uint32, done, now uint64) bool {
	return r-uint32(done) > uint32(now-done)
}

// link is a word that links to an element: a bucket's Head or an
// element's Next, 4 or 8 bytes wide (see hashCache.narrow).
type link struct{ p unsafe.Pointer }

// hashCache holds a hash map's immutable geometry in the handle, so
// neither the read path nor the writers reload it from the shared
// descriptor.
type hashCache struct {
	seed     uint32
	mask     uint32
	maxSteps uint32 // a walk longer than this means a cycle: corruption
	poolLen  uint32
	// narrow: preallocated, 4-byte links holding element numbers;
	// otherwise 8-byte links holding region offsets.
	narrow     bool
	buckets    unsafe.Pointer
	bucketSize uintptr
	headOff    uintptr // the Head link's offset in a bucket
	keyOff     uintptr // = the link size
	valueOff   uintptr
	elemSize   uintptr        // hot part
	pool       unsafe.Pointer // narrow: element 1's hot part
	cold       unsafe.Pointer // narrow: element 1's cold part
	poolOff    uint64         // narrow: region offset of element 1
	blockSize  uint64         // not narrow: an element's block, hot + cold
	// An element's index is (off - poolOff) / elemSize, an exact division:
	// ((off - poolOff) >> shift) × inv (mod 2^64), with elemSize = odd × 2^shift
	// and inv the odd factor's inverse, costs a shift and a multiply.
	shift uint
	inv   uint64
	// wordValue: a HASH whose values are one word (4 or 8 bytes) without
	// special fields, updated in place when it can be (updateInPlace).
	wordValue bool
	// anywhere: wordValue, and the key need not be its bucket's newest
	// (a random seed: the iteration order is not the kernel's anyway).
	anywhere bool
	// hasState: cold parts have State and Ref (coldSize bytes, else
	// coldSizeShort).
	hasState bool
	coldSize uintptr
}

// index is the pool index of element off (narrow maps; off must be an
// element of the pool: every caller has it from a checked link or list).
func (c *hashCache) index(off uint64) uint64 { return ((off - c.poolOff) >> c.shift) * c.inv }

func (h *hashOps) cache(m *Map) hashCache {
	d := m.d
	c := hashCache{seed: d.Seed, mask: d.NBuckets - 1, maxSteps: d.PoolLen + d.MaxEntries + 1,
		poolLen: d.PoolLen, narrow: h.prealloc(m), buckets: m.region.Pointer(d.Data),
		elemSize: uintptr(d.ElemSize), poolOff: d.Pool}
	c.bucketSize, c.headOff, c.keyOff = 16, 8, 8
	if c.narrow {
		c.bucketSize, c.headOff, c.keyOff = 8, 4, 4
		c.pool, c.cold = m.region.Pointer(d.Pool), m.region.Pointer(d.Cold)
	}
	c.valueOff = uintptr(roundUp8(uint32(c.keyOff) + d.KeySize))
	c.hasState = h.lru || !c.narrow
	c.coldSize = uintptr(h.coldBytes(m))
	c.blockSize = uint64(c.elemSize) + uint64(c.coldSize)
	c.wordValue = Type(d.Type) == Hash && d.LockOff == noLock && (d.ValueSize == 4 || d.ValueSize == 8)
	c.anywhere = c.wordValue && d.Flags&FlagZeroSeed == 0
	if c.elemSize != 0 {
		c.shift = uint(bits.TrailingZeros64(uint64(c.elemSize)))
		odd := uint64(c.elemSize) >> c.shift
		c.inv = odd // Newton's iteration: each step doubles the correct low bits (3 to start)
		for range 5 {
			c.inv *= 2 - odd*c.inv
		}
	}
	return c
}

// linkSize is the width of a bucket's Head and an element's Next.
func (h *hashOps) linkSize(m *Map) uint32 {
	if h.prealloc(m) {
		return 4
	}
	return 8
}

// bucketBytes is the size of one bucket.
func (h *hashOps) bucketBytes(m *Map) uint64 { return 2 * uint64(h.linkSize(m)) }

// coldBytes is the size of an element's cold part.
func (h *hashOps) coldBytes(m *Map) uint64 {
	if h.prealloc(m) && !h.lru {
		return coldSizeShort
	}
	return coldSize
}

// elemSize is the size of an element's hot part.
func (h *hashOps) elemSize(m *Map) uint32 {
	return roundUp8(h.linkSize(m)+m.d.KeySize) + h.valueBytes(m)
}

func (h *hashOps) bucket(m *Map, hash uint32) *bucket {
	c := &m.hc
	return (*bucket)(unsafe.Add(c.buckets, uintptr(hash&c.mask)*c.bucketSize))
}

// headLink is bucket b's Head.
func (h *hashOps) headLink(m *Map, b *bucket) link {
	return link{unsafe.Add(unsafe.Pointer(b), m.hc.headOff)}
}

// nextLink is element off's Next.
func (h *hashOps) nextLink(m *Map, off uint64) link { return link{m.region.Pointer(off)} }

// load follows a link: the offset of the element it links to, or 0 at the
// end of a chain. A link that names no element of the map (only
// corruption makes one) ends the chain too.
func (h *hashOps) load(m *Map, l link) uint64 {
	if m.hc.narrow {
		return m.hc.elemAt(atomic.LoadUint32((*uint32)(l.p)))
	}
	return h.loadWide(m, l)
}

// elemAt is the offset of element number n, 0 for 0 or a number past the
// pool.
func (c *hashCache) elemAt(n uint32) uint64 {
	n-- // 0 (end of chain) wraps past the pool
	if n >= c.poolLen {
		return 0
	}
	return c.poolOff + uint64(n)*uint64(c.elemSize)
}

// loadWide is load for maps without preallocation (kept out of line so
// that load inlines).
func (h *hashOps) loadWide(m *Map, l link) uint64 {
	off := (*atomic.Uint64)(l.p).Load()
	if off == 0 || !h.elemOK(m, off) {
		return 0
	}
	return off
}

// storeNew sets the Next link of element nu, not yet published (linkHead
// publishes it), to element off: a plain store.
func (h *hashOps) storeNew(m *Map, nu, off uint64) {
	p := m.region.Pointer(nu)
	if m.hc.narrow {
		n := uint32(0)
		if off != 0 {
			n = uint32(m.hc.index(off)) + 1
		}
		*(*uint32)(p) = n
		return
	}
	*(*uint64)(p) = off
}

// store sets a link to element off (0: end of chain), with a release
// store: an element it links in is seen whole.
func (h *hashOps) store(m *Map, l link, off uint64) {
	c := &m.hc
	if !c.narrow {
		release.Store64((*uint64)(l.p), off)
		return
	}
	n := uint32(0)
	if off != 0 {
		n = uint32(c.index(off)) + 1
	}
	release.Store32((*uint32)(l.p), n)
}

// cold returns element off's cold part.
func (h *hashOps) cold(m *Map, off uint64) *elemCold {
	c := &m.hc
	if c.narrow {
		return (*elemCold)(unsafe.Add(c.cold, uintptr(c.index(off))*c.coldSize))
	}
	return (*elemCold)(m.region.Pointer(off + uint64(c.elemSize)))
}

func (h *hashOps) key(m *Map, off uint64) []byte {
	return storage(m.region.Pointer(off+uint64(m.hc.keyOff)), m.keySize)
}

func (h *hashOps) value(m *Map, off uint64) unsafe.Pointer {
	return m.region.Pointer(off + uint64(m.hc.valueOff))
}

// lookupElem is the readers' walk, on the handle's cached geometry (the
// hot path of every lookup from user space and from programs).
func (h *hashOps) lookupElem(m *Map, key []byte) unsafe.Pointer {
	c := &m.hc
	hash := keyHash(key, c.seed)
	b := unsafe.Add(c.buckets, uintptr(hash&c.mask)*c.bucketSize)
	if !c.narrow {
		return h.lookupWide(m, (*bucket)(b), key)
	}
	// Links come from shared memory another process could have scribbled
	// on: an element number is checked against the pool before use.
	n := (*atomic.Uint32)(unsafe.Add(b, 4)).Load()
	for steps := c.maxSteps; n != 0 && steps > 0; steps-- {
		if n > c.poolLen {
			return nil
		}
		e := unsafe.Add(c.pool, uintptr(n-1)*c.elemSize)
		if keyEqual(unsafe.Add(e, 4), key) {
			return unsafe.Add(e, c.valueOff)
		}
		n = (*atomic.Uint32)(e).Load()
	}
	return nil
}

// lookupWide is lookupElem for maps without preallocation.
func (h *hashOps) lookupWide(m *Map, b *bucket, key []byte) unsafe.Pointer {
	l := h.headLink(m, b)
	for steps := m.hc.maxSteps; steps > 0; steps-- {
		off := h.load(m, l)
		if off == 0 {
			return nil
		}
		if keyEqual(m.region.Pointer(off+8), key) {
			return h.value(m, off)
		}
		l = h.nextLink(m, off)
	}
	return nil
}

// keyEqual compares the stored key at p with key: 4- and 8-byte keys (the
// common ones) as one word, without a call to the runtime's memequal.
func keyEqual(p unsafe.Pointer, key []byte) bool {
	switch len(key) {
	case 4:
		return binary.NativeEndian.Uint32(unsafe.Slice((*byte)(p), 4)) == binary.NativeEndian.Uint32(key)
	case 8:
		return binary.NativeEndian.Uint64(unsafe.Slice((*byte)(p), 8)) == binary.NativeEndian.Uint64(key)
	}
	return string(unsafe.Slice((*byte)(p), len(key))) == string(key)
}
