package rcu

import (
	"runtime"
	"sync"
	"time"

	"github.com/userbpf/userbpf/shm"
)

// Domain is one process's view of a region's RCU state.
type Domain struct {
	r *shm.Region
	w shm.RCUWords

	pool     sync.Pool  // idle pooled *Reader (see getReader)
	pooledMu sync.Mutex // guards pooled
	pooled   []*Reader  // every pooled Reader: the pool may drop them
	pinned   perP       // one Reader per P for ReadPinned (guarded by pooledMu for growth)

	mu   sync.Mutex // guards ring
	ring *ring

	// slotMu orders Reader.Close against the region's detach: once
	// detached is set the region memory may be unmapped, and closing the
	// region has released every slot of this process anyway.
	slotMu   sync.Mutex
	detached bool
}

// New attaches an RCU domain to r. Call it once per attached Region (the
// root package's Region does): the domain owns the process's retire ring.
// It registers a reap hook so that blocks
// retired by a process that dies are freed by the survivor that reaps it.
func New(r *shm.Region) *Domain {
	d := &Domain{r: r, w: r.RCU()}
	r.OnReap(d.reapRing)
	return d
}

// Close waits for a grace period, frees every block this process retired,
// and releases its retire ring. Readers still open keep their slots until
// the region is closed.
func (d *Domain) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ring == nil {
		return nil
	}
	d.synchronize()
	d.ring.drain(d.r, ^uint64(0))
	// Unlink the ring before freeing it: a crash in between leaks the
	// ring, where the other order would let a reaper drain a block that
	// is free (or already someone else's).
	d.r.RetireRing(d.r.Slot()).Store(0)
	err := d.r.Free(d.ring.off)
	d.ring = nil
	return err
}

// detach runs when the region itself is closing: after it, Reader.Close
// must not touch region memory.
func (d *Domain) detach() {
	d.slotMu.Lock()
	d.detached = true
	d.slotMu.Unlock()
}

// Synchronize returns once every read-side section that began before the
// call has ended, in every attached process. Readers of dead processes are
// cleared, not waited for. One call covers any number of earlier updates.
func (d *Domain) Synchronize() {
	d.synchronize()
}

func (d *Domain) synchronize() {
	e := d.w.Epoch.Add(1)
	high := min(int(d.w.ReaderHigh.Load()), len(d.w.Slots))
	for i := 0; i < high; i++ {
		s := &d.w.Slots[i]
		if v := s.Epoch.Load(); v == 0 || v >= e {
			continue
		}
		d.waitSlot(s, e)
	}
	maxStore(d.w.Completed, e)
	d.w.GracePeriods.Add(1)
}

// SynchronizeExcept waits for every reader that began before the call
// except the one in slot skip (the caller's own section, which cannot end
// while it waits) and returns the epoch e such that those readers have all
// left: something unpublished before the call may be reused by the caller,
// as a program in the kernel may see its own preallocated elements reused.
// It does not complete a grace period for anyone else: Completed is left
// alone, so blocks retired to the allocator stay retired.
func (d *Domain) SynchronizeExcept(skip int) uint64 {
	e := d.w.Epoch.Add(1)
	high := min(int(d.w.ReaderHigh.Load()), len(d.w.Slots))
	for i := 0; i < high; i++ {
		s := &d.w.Slots[i]
		if v := s.Epoch.Load(); i == skip || v == 0 || v >= e {
			continue
		}
		d.waitSlot(s, e)
	}
	return e
}

// waitSlot waits until slot s no longer shows a reader from before epoch e:
// spinning first (read sections are short), then sleeping with a growing
// pause, and checking the owner's liveness once the wait is long.
func (d *Domain) waitSlot(s *shm.ReaderSlot, e uint64) {
	pause := time.Duration(0)
	for spins := 0; ; spins++ {
		v := s.Epoch.Load()
		if v == 0 || v >= e {
			return
		}
		switch {
		case spins < 64:
		case spins < 128:
			runtime.Gosched()
		default:
			pause = min(max(2*pause, 20*time.Microsecond), 2*time.Millisecond)
			time.Sleep(pause)
			if pause >= 2*time.Millisecond {
				d.clearIfDead(s)
			}
		}
	}
}

// clearingBit marks a reader slot's Owner word while a process clears the
// slot of a dead owner: clearingBit | the clearer's tag. Tags use 30 bits.
// A slot being cleared is claimed by no one (unless the clearer died, see
// claim), so the clearer's store of Epoch 0 can never hit a section of a
// new owner.
const clearingBit = shm.ReaderClearing

// clearIfDead clears a reader slot whose owner process died.
func (d *Domain) clearIfDead(s *shm.ReaderSlot) {
	owner := s.Owner.Load()
	switch {
	case owner == 0:
		return
	case owner&clearingBit != 0:
		// Someone is clearing it; take over only if that clearer died.
		if d.r.Alive(owner &^ clearingBit) {
			return
		}
	default:
		if d.r.Alive(owner) {
			return
		}
		// Reaping the process clears all its slots (and frees its
		// retired blocks). If it was already reaped, or its reaper
		// died, the slot is still set: clear it here.
		d.r.ReapDead()
		if s.Owner.Load() != owner {
			return
		}
	}
	if !s.Owner.CompareAndSwap(owner, clearingBit|d.r.Tag()) {
		return
	}
	if owner&clearingBit == 0 {
		d.w.ReadersReaped.Add(1)
	}
	s.Epoch.Store(0)
	s.Owner.Store(0)
}
