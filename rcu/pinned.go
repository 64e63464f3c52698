package rcu

import (
	"runtime"
	"sync/atomic"
	_ "unsafe" // for go:linkname
)

// procPin and procUnpin pin the calling goroutine to its P (the Go
// scheduler's logical processor) and return the P's number. sync.Pool uses
// them; the runtime keeps them open to linkname for the packages that need
// the same per-P fast path.
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// perP holds one Reader per P, claimed on first use. While a goroutine is
// pinned to a P nothing else runs on it, so that P's Reader has a single
// user, as a kernel CPU's RCU state has.
type perP struct {
	readers atomic.Pointer[[]atomic.Pointer[Reader]]
}

// ReadPinned runs fn inside a read-side section on this P's Reader. It is
// the fast path for short, non-blocking sections (a map lookup copying a
// value): entry and exit are a load and two stores, no pool. fn must not
// block, sleep, take a lock that may sleep, or start goroutines: the
// goroutine cannot be preempted while pinned. fn must not panic either: a
// panic while pinned is fatal ("panic holding locks"), recover cannot
// catch it. In race-detector builds ReadPinned is Read.
func (d *Domain) ReadPinned(fn func()) error {
	if raceEnabled {
		return d.Read(fn)
	}
	p := procPin()
	if rs := d.pinned.readers.Load(); rs != nil && p < len(*rs) {
		if rd := (*rs)[p].Load(); rd != nil {
			rd.Lock()
			fn()
			rd.Unlock()
			procUnpin()
			return nil
		}
	}
	procUnpin()
	if err := d.claimPinned(p); err != nil {
		return d.Read(fn)
	}
	return d.ReadPinned(fn)
}

// claimPinned makes sure P p has a Reader.
func (d *Domain) claimPinned(p int) error {
	d.pooledMu.Lock()
	defer d.pooledMu.Unlock()
	rs := d.pinned.readers.Load()
	if rs == nil || p >= len(*rs) {
		n := max(runtime.GOMAXPROCS(0), p+1)
		grown := make([]atomic.Pointer[Reader], n)
		if rs != nil {
			for i := range *rs {
				grown[i].Store((*rs)[i].Load())
			}
		}
		rs = &grown
		d.pinned.readers.Store(rs)
	}
	if (*rs)[p].Load() != nil {
		return nil
	}
	rd, err := d.NewReader()
	if err != nil {
		return err
	}
	d.pooled = append(d.pooled, rd) // released with the pooled readers
	rd.busy.Store(true)             // never handed out by getReader
	(*rs)[p].Store(rd)
	return nil
}
