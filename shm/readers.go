package shm

import (
	"sync/atomic"
	"unsafe"
)

func (r *Region) readerSlot(i int) *ReaderSlot {
	return (*ReaderSlot)(unsafe.Add(r.base, r.hdrCopy.readerOff+uint64(i)*16))
}

// ReaderClearing marks a reader slot's Owner word while a process clears
// the slot of a dead owner (ReaderClearing | the clearer's tag; tags use 30
// bits). Whoever clears a slot owns it first, so it can never erase the
// epoch of a reader that claimed the slot in the meantime.
const ReaderClearing = 1 << 31

// RCUWords gives the RCU layer its shared state: the reader slots, the
// global epoch, the completed-epoch mark and the reader high-water mark.
// The layout belongs to the region format; the protocol belongs to package rcu.
type RCUWords struct {
	Slots         []ReaderSlot
	Epoch         *atomic.Uint64
	Completed     *atomic.Uint64
	ReaderHigh    *atomic.Uint32
	GracePeriods  *atomic.Uint64
	ReadersReaped *atomic.Uint64
}

// RCU returns the region's RCU words.
func (r *Region) RCU() RCUWords {
	return RCUWords{
		Slots:         unsafe.Slice(r.readerSlot(0), MaxReaders),
		Epoch:         &r.hdr.Epoch,
		Completed:     &r.hdr.Completed,
		ReaderHigh:    &r.hdr.ReaderHigh,
		GracePeriods:  &r.hdr.Counters[CounterGracePeriods],
		ReadersReaped: &r.hdr.Counters[CounterReadersReaped],
	}
}
