package rcu

import (
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/internal/release"
	"github.com/userbpf/userbpf/shm"
)

// Reader owns one reader slot. A Reader is used by one goroutine at a time
// (like a kernel CPU): Lock and Unlock nest, and only the outermost pair
// touches shared memory.
type Reader struct {
	d     *Domain
	slot  *shm.ReaderSlot
	idx   int
	depth int
	busy  atomic.Bool // pooled readers only: taken by a Read
}

// NewReader claims a reader slot for the caller. Close gives it back.
func (d *Domain) NewReader() (*Reader, error) {
	tag := d.r.Tag()
	for i := range d.w.Slots {
		s := &d.w.Slots[i]
		if o := s.Owner.Load(); o != 0 && o&clearingBit == 0 || !d.claim(s, o, tag) {
			continue
		}
		for {
			h := d.w.ReaderHigh.Load()
			if uint32(i) < h || d.w.ReaderHigh.CompareAndSwap(h, uint32(i)+1) {
				break
			}
		}
		return &Reader{d: d, slot: s, idx: i}, nil
	}
	return nil, errNoSlots
}

// claim takes slot s, whose owner word was o, for tag if it is free, or if
// the process that was clearing it (see clearingBit) died before it finished.
func (d *Domain) claim(s *shm.ReaderSlot, o, tag uint32) bool {
	switch {
	case o == 0:
		return s.Owner.CompareAndSwap(0, tag)
	case o&clearingBit != 0 && !d.r.Alive(o&^clearingBit):
		if !s.Owner.CompareAndSwap(o, tag) {
			return false
		}
		s.Epoch.Store(0) // the clearer may have died before this store
		return true
	}
	return false
}

// Slot is the index of the reader's slot (for SynchronizeExcept).
func (rd *Reader) Slot() int { return rd.idx }

// Lock enters a read-side section.
func (rd *Reader) Lock() {
	if rd.depth == 0 {
		rd.slot.Epoch.Store(rd.d.w.Epoch.Load())
	}
	rd.depth++
}

// Unlock leaves a read-side section. Clearing the epoch needs release
// ordering only (the section's loads must be done before a writer can see
// the slot empty), not the full fence of an atomic store: see package
// release. Entering needs the fence (Lock): the epoch must be visible
// before the section's first load.
func (rd *Reader) Unlock() {
	rd.depth--
	if rd.depth == 0 {
		release.Store64(epochWord(&rd.slot.Epoch), 0)
	}
}

// epochWord is the word behind an atomic.Uint64 (its only field with a
// size), for a release store.
func epochWord(a *atomic.Uint64) *uint64 { return (*uint64)(unsafe.Pointer(a)) }

// Close releases the reader's slot. The reader must not be inside a section.
// After the region is closed, Close only forgets the slot (closing the
// region released it).
func (rd *Reader) Close() {
	if rd.slot == nil {
		return
	}
	rd.d.releaseSlot(rd.slot)
	rd.slot = nil
}

// releaseSlot gives a reader slot back, unless the region was closed: its
// memory may be unmapped, and closing it released every slot of this process.
func (d *Domain) releaseSlot(s *shm.ReaderSlot) {
	d.slotMu.Lock()
	defer d.slotMu.Unlock()
	if !d.detached {
		s.Epoch.Store(0)
		s.Owner.Store(0)
	}
}

// Read runs fn inside a read-side section, on a pooled reader. For the
// hottest paths hold a Reader of your own instead.
func (d *Domain) Read(fn func()) error {
	rd, err := d.getReader()
	if err != nil {
		return err
	}
	rd.Lock()
	defer d.putReader(rd)
	fn()
	return nil
}

// getReader takes an idle pooled reader, or claims a new slot for one.
//
// sync.Pool may drop what it holds (at every garbage collection, and on a
// quarter of all Puts in race-detector builds), so the domain also keeps
// every pooled reader in a list and takes an idle one from there when the
// pool is empty. A reader is idle while its busy flag is clear; taking one,
// from the pool or from the list, is winning the flag's CAS, so a reader
// found in both places is still used by one goroutine at a time. Pooled
// readers therefore hold as many slots as Reads ever ran at once, and give
// them back when the region is closed.
func (d *Domain) getReader() (*Reader, error) {
	for {
		rd, ok := d.pool.Get().(*Reader)
		if !ok {
			break
		}
		if rd.busy.CompareAndSwap(false, true) {
			return rd, nil
		}
		// Taken from the list since it was put: a stale pool entry.
	}
	d.pooledMu.Lock()
	defer d.pooledMu.Unlock()
	for _, rd := range d.pooled {
		if rd.busy.CompareAndSwap(false, true) {
			return rd, nil
		}
	}
	rd, err := d.NewReader()
	if err != nil {
		return nil, err
	}
	rd.busy.Store(true)
	d.pooled = append(d.pooled, rd)
	return rd, nil
}

// putReader leaves rd's section and makes it idle again.
func (d *Domain) putReader(rd *Reader) {
	rd.Unlock()
	rd.busy.Store(false)
	d.pool.Put(rd)
}
