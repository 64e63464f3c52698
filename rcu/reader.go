package rcu

import (
	"runtime"

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
}

// NewReader claims a reader slot for the caller. Close gives it back.
func (d *Domain) NewReader() (*Reader, error) {
	tag := d.r.Tag()
	for i := range d.w.Slots {
		s := &d.w.Slots[i]
		if s.Owner.Load() != 0 || !s.Owner.CompareAndSwap(0, tag) {
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

// Lock enters a read-side section.
func (rd *Reader) Lock() {
	if rd.depth == 0 {
		rd.slot.Epoch.Store(rd.d.w.Epoch.Load())
	}
	rd.depth++
}

// Unlock leaves a read-side section.
func (rd *Reader) Unlock() {
	rd.depth--
	if rd.depth == 0 {
		rd.slot.Epoch.Store(0)
	}
}

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
	defer func() {
		rd.Unlock()
		d.pool.Put(rd)
	}()
	fn()
	return nil
}

// getReader takes a pooled reader or claims a new slot. A pooled reader the
// garbage collector drops gives its slot back through a cleanup (which does
// nothing once the region is closed).
func (d *Domain) getReader() (*Reader, error) {
	if rd, ok := d.pool.Get().(*Reader); ok {
		return rd, nil
	}
	rd, err := d.NewReader()
	if err != nil {
		return nil, err
	}
	runtime.AddCleanup(rd, func(s *shm.ReaderSlot) { d.releaseSlot(s) }, rd.slot)
	return rd, nil
}
