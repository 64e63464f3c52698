package rcu

import (
	"sync/atomic"
)

// Retire frees the region block at off once every reader that might still
// see it has left: the caller has already unpublished it. Retire does not
// wait unless this process's retire ring is full, in which case it runs a
// grace period first.
func (d *Domain) Retire(off uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ring == nil {
		ro, err := d.r.Alloc(ringBytes)
		if err != nil {
			return err
		}
		d.ring = openRing(d.r, ro)
		d.r.RetireRing(d.r.Slot()).Store(ro)
	}
	if d.ring.len() >= ringCap/2 {
		d.ring.drain(d.r, d.w.Completed.Load())
	}
	if d.ring.len() >= ringCap {
		d.synchronize()
		d.ring.drain(d.r, d.w.Completed.Load())
	}
	d.ring.push(off, d.w.Epoch.Load())
	return nil
}

// Barrier waits for a grace period and frees every block this process has
// retired so far.
func (d *Domain) Barrier() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.synchronize()
	if d.ring != nil {
		d.ring.drain(d.r, d.w.Completed.Load())
	}
}

// Pending is the number of blocks this process has retired and not yet freed.
func (d *Domain) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ring == nil {
		return 0
	}
	return int(d.ring.len())
}

// reapRing frees what a dead (or detaching) process left on its retire ring.
// It runs from the region's reap hook, after the process's reader slots were
// cleared, so the grace period it waits for cannot wait on the dead process.
func (d *Domain) reapRing(slot int, _ uint32) {
	if slot == d.r.Slot() { // this process is detaching
		d.detach()
		d.Close()
		return
	}
	w := d.r.RetireRing(slot)
	off := w.Load()
	if off == 0 {
		return
	}
	d.synchronize()
	openRing(d.r, off).drain(d.r, ^uint64(0))
	if w.CompareAndSwap(off, 0) {
		d.r.Free(off)
	}
}

func maxStore(w *atomic.Uint64, v uint64) {
	for {
		old := w.Load()
		if old >= v || w.CompareAndSwap(old, v) {
			return
		}
	}
}
