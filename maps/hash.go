package maps

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/release"
	"github.com/userbpf/userbpf/shm"
)

// hashOps implements HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH
// (kernel/bpf/hashtab.c). The storage layout is drawn in hashlayout.go.
//
// Writers link, unlink and replace elements under the bucket lock; readers
// walk buckets without locks inside an RCU read-side section. A replaced
// or deleted element keeps its Next link and is reused only after a grace
// period, so a reader standing on it finishes its walk safely. New and
// replacing elements are linked at the bucket head (newest first), as the
// kernel does; a one-word HASH value is instead overwritten in place when
// that changes nothing the kernel's order promises (updateInPlace).
//
// Preallocated elements sit on one of two lists in the descriptor: Free
// (ready to use) and Limbo (unlinked, waiting for a grace period). A writer
// that finds Free empty runs one grace period and moves everything that was
// in Limbo before it to Free, so one Synchronize is shared by many updates.
type hashOps struct {
	perCPU bool
	lru    bool
}

// elemLists are the lists preallocated elements move between (24 bytes;
// one set in the descriptor, or one per CPU for BPF_F_NO_COMMON_LRU, each
// in its own 64-byte line):
//
//	0   Free u64   tagged head: elements ready for use
//	8   Limbo u64  tagged head: elements unlinked, waiting for a grace period
//	16  Clock u64  LRU clock hand over this set's part of the pool
type elemLists struct {
	Free  atomic.Uint64
	Limbo atomic.Uint64
	Clock atomic.Uint64
}

// htabCreateFlags is HTAB_CREATE_FLAG_MASK.
const htabCreateFlags = FlagNoPrealloc | FlagNoCommonLRU | FlagNumaNode | flagAccessMask | FlagZeroSeed

func (h *hashOps) allocCheck(s *Spec, ncpu int) error {
	prealloc := s.Flags&FlagNoPrealloc == 0
	percpuLRU := s.Flags&FlagNoCommonLRU != 0
	switch {
	case s.Flags&^htabCreateFlags != 0 || !accessOK(s.Flags):
		return fmt.Errorf("%w: flags %#x are not valid for %s", ErrInvalid, s.Flags, s.Type)
	case !h.lru && percpuLRU:
		return fmt.Errorf("%w: BPF_F_NO_COMMON_LRU is for LRU maps only", ErrInvalid)
	case h.lru && !prealloc:
		return fmt.Errorf("%w: LRU maps are always preallocated (BPF_F_NO_PREALLOC)", ErrNotSupported)
	case s.Flags&FlagNumaNode != 0 && (h.perCPU || percpuLRU):
		return fmt.Errorf("%w: BPF_F_NUMA_NODE with a per-CPU map", ErrInvalid)
	case s.MaxEntries == 0 || s.KeySize == 0 || s.ValueSize == 0:
		return fmt.Errorf("%w: %s needs key > 0, value > 0 and entries > 0 (got key %d value %d entries %d)",
			ErrInvalid, s.Type, s.KeySize, s.ValueSize, s.MaxEntries)
	case uint64(s.KeySize)+uint64(s.ValueSize) >= kmallocMaxSize-htabElemSize:
		return fmt.Errorf("%w: key %d + value %d bytes", ErrFull, s.KeySize, s.ValueSize)
	case h.perCPU && roundUp8(s.ValueSize) > pcpuMinUnitSize:
		return fmt.Errorf("%w: per-CPU value size %d is above %d", ErrFull, s.ValueSize, pcpuMinUnitSize)
	case s.MaxEntries > 1<<31:
		return fmt.Errorf("%w: max_entries %d is above 2^31", ErrFull, s.MaxEntries)
	case uint64(1)<<bits.Len32(s.MaxEntries-1) > (1<<32-1)/16:
		// n_buckets × sizeof(struct bucket) must fit in 32 bits.
		return fmt.Errorf("%w: max_entries %d needs more than 2^28 buckets", ErrFull, s.MaxEntries)
	}
	return nil
}

func (h *hashOps) valueBytes(m *Map) uint32 {
	if h.perCPU {
		return uint32(m.ncpu) * m.stride
	}
	return m.stride
}

func (h *hashOps) prealloc(m *Map) bool { return m.flags&FlagNoPrealloc == 0 }

// spares are extra preallocated elements so that replacing a key in a full
// map always finds an element (the kernel keeps one per CPU).
func (h *hashOps) spares(m *Map) uint32 {
	if h.perCPULRU(m) {
		return 0 // each CPU's part is exactly its share of max_entries
	}
	return uint32(m.ncpu) + 16
}

// commonLRU is an LRU map with one list: its capacity is kept by the
// element count (reserve, evicting when full), so spare elements in other
// updaters' hands never make an insert fail.
func (h *hashOps) commonLRU(m *Map) bool { return h.lru && !h.perCPULRU(m) }

// reserveLRU counts one more element, evicting old ones while the map is
// full. It runs before any bucket lock is taken (evicting takes other
// buckets' locks), as the kernel takes a node before locking the bucket:
// a failing NOEXIST/EXIST update may still have evicted something.
func (h *hashOps) reserveLRU(m *Map) {
	for !h.reserve(m) {
		h.evict(m, 0, h.evictBatch(m))
	}
}

func (h *hashOps) alloc(m *Map) error {
	d := m.d
	if h.lru && m.flags&FlagNoCommonLRU != 0 {
		n := uint64(m.ncpu)
		me := (uint64(d.MaxEntries) + n - 1) / n * n
		if me > 1<<32-1 {
			me = uint64(d.MaxEntries) / n * n
		}
		d.MaxEntries = uint32(me)
		m.maxEntries = d.MaxEntries
	}
	d.NBuckets = uint32(1) << bits.Len32(d.MaxEntries-1)
	d.ElemSize = h.elemSize(m)
	if m.flags&FlagZeroSeed == 0 {
		var b [4]byte
		rand.Read(b[:])
		d.Seed = binary.NativeEndian.Uint32(b[:])
	}
	buckets, err := m.region.Alloc(uint64(d.NBuckets) * h.bucketBytes(m))
	if err != nil {
		return fmt.Errorf("%w: %d buckets: %v", ErrNoMemory, d.NBuckets, err)
	}
	d.Data = buckets
	if !h.prealloc(m) {
		m.hc = h.cache(m)
		return nil
	}
	d.PoolLen = d.MaxEntries + h.spares(m)
	pool, err := m.region.Alloc(uint64(d.PoolLen) * uint64(d.ElemSize))
	if err != nil {
		m.region.Free(buckets)
		return fmt.Errorf("%w: %d preallocated elements: %v", ErrNoMemory, d.PoolLen, err)
	}
	cold, err := m.region.Alloc(uint64(d.PoolLen) * h.coldBytes(m))
	if err != nil {
		m.region.Free(buckets)
		m.region.Free(pool)
		return fmt.Errorf("%w: %d preallocated elements' cold parts: %v", ErrNoMemory, d.PoolLen, err)
	}
	d.Pool, d.Cold = pool, cold
	if h.perCPULRU(m) {
		parts, err := m.region.Alloc(uint64(m.ncpu) * 64)
		if err != nil {
			m.region.Free(buckets)
			m.region.Free(pool)
			m.region.Free(cold)
			return fmt.Errorf("%w: per-CPU LRU lists: %v", ErrNoMemory, err)
		}
		d.Parts = parts
	}
	m.hc = h.cache(m)
	// Chain every element on its set's free list, first element on top.
	for i := d.PoolLen; i > 0; i-- {
		off := pool + uint64(i-1)*uint64(d.ElemSize)
		l := h.listsOf(m, off)
		h.cold(m, off).FreeNext = m.hc.num(shm.HeadOffset(l.Free.Load()))
		l.Free.Store(off)
	}
	return nil
}

// perCPULRU says the pool is split into one part per CPU, each with its
// own lists: an insert on CPU c takes (and evicts) only from part c.
func (h *hashOps) perCPULRU(m *Map) bool { return h.lru && m.flags&FlagNoCommonLRU != 0 }

// partLen is the number of pool elements in one list set.
func (h *hashOps) partLen(m *Map) uint32 {
	if h.perCPULRU(m) {
		return m.d.PoolLen / uint32(m.ncpu)
	}
	return m.d.PoolLen
}

// lists returns list set p (0 unless per-CPU LRU).
func (h *hashOps) lists(m *Map, p int) *elemLists {
	if !h.perCPULRU(m) {
		return &m.d.Lists
	}
	return (*elemLists)(m.region.Pointer(m.d.Parts + uint64(p)*64))
}

// listsOf returns the list set element off belongs to.
func (h *hashOps) listsOf(m *Map, off uint64) *elemLists {
	return h.lists(m, h.partOf(m, off))
}

func (h *hashOps) partOf(m *Map, off uint64) int {
	if !h.perCPULRU(m) {
		return 0
	}
	return int(m.hc.index(off) / uint64(h.partLen(m)))
}

// insertPart is the list set an insert from this thread uses: the CPU it
// runs on, as the kernel uses the current CPU's LRU list.
func (h *hashOps) insertPart(m *Map) int {
	if !h.perCPULRU(m) {
		return 0
	}
	return currentCPU() % m.ncpu
}

func (h *hashOps) free(m *Map) {
	if m.d.Parts != 0 {
		m.region.Free(m.d.Parts)
	}
	if m.d.Pool != 0 {
		m.region.Free(m.d.Pool)
		m.region.Free(m.d.Cold)
	}
	m.region.Free(m.d.Data)
}

func (h *hashOps) validate(m *Map) error {
	d := m.d
	if d.NBuckets == 0 || d.NBuckets&(d.NBuckets-1) != 0 || d.NBuckets < d.MaxEntries ||
		d.ElemSize != h.elemSize(m) {
		return fmt.Errorf("bad hash geometry")
	}
	if _, err := m.region.Bytes(d.Data, uint64(d.NBuckets)*h.bucketBytes(m)); err != nil {
		return err
	}
	if !h.prealloc(m) {
		if d.PoolLen != 0 {
			return fmt.Errorf("a pool of %d elements in a map without preallocation", d.PoolLen)
		}
	} else {
		if d.PoolLen < d.MaxEntries {
			return fmt.Errorf("a pool of %d elements for %d entries", d.PoolLen, d.MaxEntries)
		}
		if _, err := m.region.Bytes(d.Pool, uint64(d.PoolLen)*uint64(d.ElemSize)); err != nil {
			return err
		}
		if _, err := m.region.Bytes(d.Cold, uint64(d.PoolLen)*h.coldBytes(m)); err != nil {
			return err
		}
	}
	if h.perCPULRU(m) {
		if d.PoolLen%d.NCPU != 0 {
			return fmt.Errorf("per-CPU LRU pool of %d elements does not split over %d CPUs", d.PoolLen, d.NCPU)
		}
		if _, err := m.region.Bytes(d.Parts, uint64(d.NCPU)*64); err != nil {
			return err
		}
	}
	return nil
}

// find walks a bucket for key; it returns the element and the link to it
// (the bucket head or the previous element's Next).
func (h *hashOps) find(m *Map, b *bucket, key []byte) (uint64, link) {
	l := h.headLink(m, b)
	for steps := m.hc.maxSteps; steps > 0; steps-- {
		off := h.load(m, l)
		if off == 0 {
			return 0, link{}
		}
		if keyEqual(m.region.Pointer(off+uint64(m.hc.keyOff)), key) {
			return off, l
		}
		l = h.nextLink(m, off)
	}
	return 0, link{} // a cycle: only corruption makes one
}

// unlinkAt removes element off, which l links to (bucket lock held).
func (h *hashOps) unlinkAt(m *Map, l link, off uint64) {
	h.store(m, l, h.load(m, h.nextLink(m, off)))
}

// linkHead links element off at bucket b's head (lock held): readers find
// it first from then on.
func (h *hashOps) linkHead(m *Map, b *bucket, off uint64) {
	head := h.headLink(m, b)
	h.storeNew(m, off, h.load(m, head))
	h.store(m, head, off)
}

// lockBucket takes a bucket's lock. If the previous holder died, it may
// have left the bucket mid-change (a new element linked, the old not yet
// unlinked), so the bucket is repaired first.
func (h *hashOps) lockBucket(m *Map, b *bucket) {
	if b.Lock.Lock(m.holder) {
		h.repairBucket(m, b)
	}
}

// repairBucket drops second copies of a key (the older one, which a
// replacement had not yet unlinked) and, in maps whose elements keep a
// State, elements that are not live.
func (h *hashOps) repairBucket(m *Map, b *bucket) {
	l := h.headLink(m, b)
	var seen [][]byte
	for steps, off := m.hc.maxSteps, h.load(m, l); off != 0 && steps > 0; steps, off = steps-1, h.load(m, l) {
		k := h.key(m, off)
		dup := false
		for _, s := range seen {
			if bytes.Equal(s, k) {
				dup = true
				break
			}
		}
		if dup || m.hc.hasState && atomic.LoadUint32(&h.cold(m, off).State) != elemLive {
			h.unlinkAt(m, l, off)
			if dup {
				// The older copy of a key caught mid-replacement: the count
				// counted the key once, so only the element goes back.
				h.putElem(m, off, true)
			}
			continue
		}
		seen = append(seen, append([]byte(nil), k...))
		l = h.nextLink(m, off)
	}
}

// getElem returns an element to fill: from the free list, from the region
// without prealloc, or, for LRU maps, by evicting some. It must not be
// called inside a read-side section (it may wait for a grace period).
func (h *hashOps) getElem(m *Map) (uint64, error) { return h.getElemFor(m, userCaller) }

// The caller of an update, for the grace period getElem may need: user
// space (which waits for every reader), or a program whose own read-side
// section holds reader slot n (waiting for it would never end, so it is
// skipped, as a kernel program may see its own preallocated elements
// reused), or a program whose slot is unknown (which does not wait).
const (
	userCaller        = -1
	unknownProgCaller = -2
)

func (h *hashOps) getElemFor(m *Map, caller int) (uint64, error) {
	if !h.prealloc(m) {
		off, err := m.region.Alloc(m.hc.blockSize)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrNoMemory, err)
		}
		return off, nil
	}
	part := h.insertPart(m)
	l := h.lists(m, part)
	var giveUp time.Time
	for {
		if off := h.pop(m, &l.Free); off != 0 {
			return off, nil
		}
		if h.perCPULRU(m) && shm.HeadOffset(l.Limbo.Load()) == 0 {
			h.evict(m, part, h.evictBatch(m))
		}
		if shm.HeadOffset(l.Limbo.Load()) != 0 {
			switch caller {
			case userCaller:
				m.rcu.Synchronize()
				h.drainLimbo(m, l, m.rcuWords.Completed.Load())
			case unknownProgCaller:
				h.drainLimbo(m, l, m.rcuWords.Completed.Load())
			default:
				h.drainLimbo(m, l, m.rcu.SynchronizeExcept(caller))
			}
			if shm.HeadOffset(l.Free.Load()) != 0 {
				continue
			}
		}
		// Every spare is in other updaters' hands: wait for one, but not
		// forever (a holder may have died with it).
		if giveUp.IsZero() {
			giveUp = time.Now().Add(time.Second)
		} else if time.Now().After(giveUp) {
			return 0, fmt.Errorf("%w: no free element in the pool", ErrNoMemory)
		}
		runtime.Gosched()
	}
}

// drainLimbo moves every element retired before epoch done (readers of
// earlier epochs have left) from Limbo to Free. Elements move one at a time (pop, push): a crash in between
// leaks one element, never corrupts a list.
func (h *hashOps) drainLimbo(m *Map, l *elemLists, done uint64) {
	for {
		off := h.pop(m, &l.Limbo)
		if off == 0 {
			return
		}
		if !retiredBefore(h.cold(m, off).Retired, done, m.rcuWords.Epoch.Load()) {
			h.push(m, &l.Limbo, off) // retired after our grace period began
			return
		}
		h.push(m, &l.Free, off)
	}
}

func (h *hashOps) pop(m *Map, head *atomic.Uint64) uint64 {
	for {
		hd := head.Load()
		off := shm.HeadOffset(hd)
		if off == 0 || !h.inPool(m, off) {
			return 0
		}
		next := m.hc.elemAt(atomic.LoadUint32(&h.cold(m, off).FreeNext))
		if head.CompareAndSwap(hd, shm.NextHead(hd, next)) {
			return off
		}
	}
}

func (h *hashOps) push(m *Map, head *atomic.Uint64, off uint64) {
	t := h.cold(m, off)
	for {
		hd := head.Load()
		t.FreeNext = m.hc.num(shm.HeadOffset(hd))
		if head.CompareAndSwap(hd, shm.NextHead(hd, off)) {
			return
		}
	}
}

// putElem gives back an element. retired says it was visible to readers:
// it then waits in Limbo for a grace period (without prealloc, RCU frees
// it after one).
func (h *hashOps) putElem(m *Map, off uint64, retired bool) {
	if retired {
		m.drainValue(h.value(m, off)) // deleted, replaced or evicted: its containers go
	}
	if m.hc.hasState {
		h.cold(m, off).State = elemFree
	}
	if !h.prealloc(m) {
		if retired {
			m.rcu.Retire(off)
		} else {
			m.region.Free(off)
		}
		return
	}
	l := h.listsOf(m, off)
	if !retired {
		h.push(m, &l.Free, off)
		return
	}
	h.cold(m, off).Retired = uint32(m.rcuWords.Epoch.Load())
	h.push(m, &l.Limbo, off)
}

// elemOK reports whether off (read from shared memory) is an element of
// the map: in its pool, or, without one, a whole block in the heap.
func (h *hashOps) elemOK(m *Map, off uint64) bool {
	if m.d.Pool != 0 {
		return h.inPool(m, off)
	}
	_, err := m.region.Bytes(off, m.hc.blockSize)
	return err == nil
}

func (h *hashOps) inPool(m *Map, off uint64) bool {
	d := m.d
	if off < d.Pool || !m.hc.narrow {
		return false
	}
	i := m.hc.index(off) // exact only for an element's offset: check it back
	return i < uint64(d.PoolLen) && i*uint64(d.ElemSize) == off-d.Pool
}

// fill writes key and value into a fresh element (linkHead sets its Next).
func (h *hashOps) fill(m *Map, off uint64, key, value []byte) {
	copy(h.key(m, off), key)
	p := h.value(m, off)
	if h.perCPU {
		m.copyInPerCPU(p, value)
	} else {
		m.drainValue(p) // a program may have added to a retired element's containers
		clear(storage(p, m.stride))
		m.copyIn(p, value)
	}
	if m.hc.hasState {
		c := h.cold(m, off)
		c.Ref = 1 // LRU: a new element gets one pass of the clock
		c.State = elemLive
	}
}

func (h *hashOps) update(m *Map, key, value []byte, flags uint64) error {
	return h.updateFor(m, key, value, flags, userCaller)
}

// updateFor is update on behalf of caller (userCaller, or a program's
// reader slot, see getElemFor).
func (h *hashOps) updateFor(m *Map, key, value []byte, flags uint64, caller int) error {
	op := flags &^ FlagLock
	if op > UpdateExist || flags&FlagLock != 0 && h.perCPU {
		return fmt.Errorf("%w: update flags %#x", ErrInvalid, flags)
	}
	hash := keyHash(key, m.hc.seed)
	b := h.bucket(m, hash)
	if flags&FlagLock != 0 {
		// BPF_F_LOCK on an existing element updates it in place under its lock.
		h.lockBucket(m, b)
		if old, _ := h.find(m, b, key); old != 0 {
			err := ErrKeyExist
			if op != UpdateNoExist {
				p := h.value(m, old)
				l := m.valueLock(p)
				l.Lock(m.holder)
				m.copyIn(p, value)
				l.Unlock()
				err = nil
			}
			b.Lock.Unlock()
			return err
		}
		b.Lock.Unlock()
	}
	if h.perCPU && !h.lru || h.perCPU && op == UpdateExist {
		// Per-CPU values are updated in place when the key exists.
		h.lockBucket(m, b)
		if old, _ := h.find(m, b, key); old != 0 {
			err := ErrKeyExist
			if op != UpdateNoExist {
				m.copyInPerCPU(h.value(m, old), value)
				err = nil
			}
			b.Lock.Unlock()
			return err
		}
		b.Lock.Unlock()
		if op == UpdateExist {
			return ErrKeyNotExist
		}
	}
	if op != UpdateNoExist && m.hc.wordValue && h.updateInPlace(m, b, key, value) {
		return nil
	}
	reserved := h.commonLRU(m)
	if reserved {
		h.reserveLRU(m)
	}
	nu, err := h.getElemFor(m, caller)
	if err != nil {
		if reserved {
			m.d.Count.Add(-1)
		}
		return err
	}
	h.lockBucket(m, b)
	old, ol := h.find(m, b, key)
	if old != 0 && reserved {
		m.d.Count.Add(-1) // a replacement adds no element
	}
	switch {
	case old != 0 && op == UpdateNoExist:
		err = ErrKeyExist
	case old == 0 && op == UpdateExist:
		err = ErrKeyNotExist
	case old != 0 && h.perCPU:
		// In place (LRU per-CPU with BPF_ANY still consumed an element, as the kernel does).
		m.copyInPerCPU(h.value(m, old), value)
		b.Lock.Unlock()
		h.putElem(m, nu, false)
		return nil
	case old == 0 && !h.lru && !h.reserve(m):
		err = fmt.Errorf("%w: map holds max_entries (%d) elements", ErrFull, m.maxEntries)
	}
	if err != nil {
		if old == 0 && reserved {
			m.d.Count.Add(-1)
		}
		b.Lock.Unlock()
		h.putElem(m, nu, false)
		return err
	}
	if old == 0 && h.perCPULRU(m) {
		m.d.Count.Add(1)
	}
	h.fill(m, nu, key, value)
	h.linkHead(m, b, nu) // readers now find the new element first
	if old != 0 {
		if ol == h.headLink(m, b) {
			ol = h.nextLink(m, nu) // old was the newest: the new element links to it now
		}
		h.unlinkAt(m, ol, old)
	}
	b.Lock.Unlock()
	if old != 0 {
		h.putElem(m, old, true)
	}
	return nil
}

// updateInPlace stores a one-word value over the current one and reports
// whether it did. Only HASH values of 4 or 8 bytes without special fields
// qualify (hashCache.wordValue): readers see the old word or the new one,
// whole, and the update costs no element and no grace period.
//
// With BPF_F_ZERO_SEED, whose iteration order is the kernel's key for key,
// only a key that is its bucket's newest element qualifies: a replacement
// would link the new element at the head, where the key already is, so
// nothing the kernel lets anyone observe changes (bucket order, count,
// errno). With a random seed the order is unspecified and no one can
// compare it with the kernel's, so any existing key qualifies; it keeps
// its place in its bucket (docs/semantics.md).
func (h *hashOps) updateInPlace(m *Map, b *bucket, key, value []byte) bool {
	at := func() uint64 {
		if m.hc.anywhere {
			off, _ := h.find(m, b, key)
			return off
		}
		if off := h.load(m, h.headLink(m, b)); off != 0 && keyEqual(m.region.Pointer(off+uint64(m.hc.keyOff)), key) {
			return off
		}
		return 0
	}
	// A peek without the lock (and outside a read section: an element may
	// be reused under us, which only sends us the slow way or to the check
	// under the lock) keeps updates that cannot be done in place from
	// taking the lock twice.
	if at() == 0 {
		return false
	}
	h.lockBucket(m, b)
	off := at()
	done := off != 0
	if done {
		p := h.value(m, off)
		if len(value) == 8 {
			release.Store64((*uint64)(p), binary.NativeEndian.Uint64(value))
		} else {
			release.Store32((*uint32)(p), binary.NativeEndian.Uint32(value))
		}
	}
	b.Lock.Unlock()
	return done
}

// reserve counts one more element unless the map is full.
func (h *hashOps) reserve(m *Map) bool {
	for {
		c := m.d.Count.Load()
		if c >= int64(m.maxEntries) {
			return false
		}
		if m.d.Count.CompareAndSwap(c, c+1) {
			return true
		}
	}
}

// unlink removes element off from bucket b (lock held).
func (h *hashOps) unlink(m *Map, b *bucket, off uint64) bool {
	l := h.headLink(m, b)
	for steps, cur := m.hc.maxSteps, h.load(m, l); cur != 0 && steps > 0; steps, cur = steps-1, h.load(m, l) {
		if cur == off {
			h.unlinkAt(m, l, off)
			return true
		}
		l = h.nextLink(m, cur)
	}
	return false
}

func (h *hashOps) delete(m *Map, key []byte) error { return h.unlinkKey(m, key, nil) }

func (h *hashOps) lookupAndDelete(m *Map, key, value []byte, flags uint64) error {
	return h.unlinkKey(m, key, func(v unsafe.Pointer) { m.copyOutAny(value, v, flags) })
}

// unlinkKey takes key's element out of its bucket and gives it back (for
// reuse after a grace period). peek, if not nil, sees the element's value
// under the bucket lock first, while no writer can change it.
func (h *hashOps) unlinkKey(m *Map, key []byte, peek func(value unsafe.Pointer)) error {
	b := h.bucket(m, keyHash(key, m.hc.seed))
	h.lockBucket(m, b)
	off, l := h.find(m, b, key)
	if off == 0 {
		b.Lock.Unlock()
		return ErrKeyNotExist
	}
	if peek != nil {
		peek(h.value(m, off))
	}
	h.unlinkAt(m, l, off)
	m.d.Count.Add(-1)
	b.Lock.Unlock()
	h.putElem(m, off, true)
	return nil
}

func (h *hashOps) nextKey(m *Map, key, next []byte) error {
	i := uint32(0)
	if key != nil {
		hash := keyHash(key, m.hc.seed)
		b := h.bucket(m, hash)
		if off, _ := h.find(m, b, key); off != 0 {
			if n := h.load(m, h.nextLink(m, off)); n != 0 && h.forward(m, b, hash, off, n) {
				copy(next, h.key(m, n))
				return nil
			}
			i = hash&(m.d.NBuckets-1) + 1
		}
	}
	for ; i < m.d.NBuckets; i++ {
		// (A head whose key is another bucket's was scribbled on: it
		// would send the iteration back.)
		if off := h.load(m, h.headLink(m, h.bucket(m, i))); off != 0 && keyHash(h.key(m, off), m.hc.seed)&m.hc.mask == i {
			copy(next, h.key(m, off))
			return nil
		}
	}
	return ErrKeyNotExist
}

// forward reports whether n, the element after off in bucket b (hash is
// off's key's), moves an iteration forward: it belongs to the bucket and
// does not come before off. Inside a read-side section a real chain
// always does (elements are not reused under it); only links a peer
// scribbled on send an iteration back, which forever is where it would
// cycle, so such a link ends the bucket.
func (h *hashOps) forward(m *Map, b *bucket, hash uint32, off, n uint64) bool {
	if keyHash(h.key(m, n), m.hc.seed)&m.hc.mask != hash&m.hc.mask {
		return false
	}
	l := h.headLink(m, b)
	for steps := m.hc.maxSteps; steps > 0; steps-- {
		cur := h.load(m, l)
		if cur == n {
			return false
		}
		if cur == off || cur == 0 {
			return true
		}
		l = h.nextLink(m, cur)
	}
	return false
}

// evictBatch is how many elements an LRU map evicts at once when it has
// none free: the kernel's target_free, clamp(max_entries/ncpu/2, 1, 128).
func (h *hashOps) evictBatch(m *Map) int {
	if h.perCPULRU(m) {
		return 4 // the kernel's per-CPU LRU shrinks 4 at a time
	}
	return int(min(max(m.maxEntries/uint32(m.ncpu)/2, 1), 128))
}

// evict moves up to n elements from the buckets to Limbo, choosing with a
// clock over the pool. Ref is an age: a new element starts at 1, a
// program lookup raises it to 2 (user-space lookups do not touch it, as in
// the kernel); each pass of the clock lowers it by one, and an element at
// 0 is evicted. So a key programs keep using outlives a full turn of the
// clock, and a new key gets one turn. If two turns find nothing to evict,
// the clock takes what it finds.
func (h *hashOps) evict(m *Map, part, n int) {
	d := m.d
	l := h.lists(m, part)
	per := h.partLen(m)
	first := uint64(part) * uint64(per)
	for scanned := uint32(0); n > 0 && scanned < 3*per+1; scanned++ {
		off := d.Pool + (first+l.Clock.Add(1)%uint64(per))*uint64(d.ElemSize)
		t := h.cold(m, off)
		if atomic.LoadUint32(&t.State) != elemLive {
			continue
		}
		if ref := atomic.LoadUint32(&t.Ref); ref != 0 && scanned < 2*per {
			t.Ref = ref - 1
			continue
		}
		// The key may change under us (the element reused): then the
		// bucket is the wrong one, and unlink finds nothing in it.
		b := h.bucket(m, keyHash(h.key(m, off), m.hc.seed))
		h.lockBucket(m, b)
		if atomic.LoadUint32(&t.State) == elemLive && h.unlink(m, b, off) {
			m.d.Count.Add(-1)
			m.emitStored(EventEvict, h.key(m, off), nil)
			b.Lock.Unlock()
			h.putElem(m, off, true)
			n--
			continue
		}
		b.Lock.Unlock()
	}
}

// Count is the number of elements in a hash or LPM map (0 for types that
// do not count: arrays, queues, bloom filters).
func (m *Map) Count() int64 { return m.d.Count.Load() }
