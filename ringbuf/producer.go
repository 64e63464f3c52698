package ringbuf

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/internal/futex"
	"github.com/userbpf/userbpf/internal/release"
	"github.com/userbpf/userbpf/maps"
)

// errOutputFull is Output's error on a full ring: ErrFull, and EAGAIN as
// bpf_ringbuf_output returns.
var errOutputFull = fmt.Errorf("%w (%w)", ErrFull, unix.EAGAIN)

// prefetchAhead is how far ahead of their positions producers and readers
// prefetch the ring's cache lines.
const prefetchAhead = 2048

// Reserve reserves a record of size bytes and returns its payload, in
// place in the ring. The record is invisible to consumers (and holds back
// every later record) until Submit or Discard; call exactly one of them.
//
// A record that can never fit (round_up(size + 8, 8) larger than the ring,
// or size above MaxRecordSize) is ErrTooBig. A ring without room now is
// ErrFull: the record is dropped and counted in Stats.Drops, and nothing in
// the ring is overwritten.
func (g *Ring) Reserve(size int) ([]byte, error) {
	if err := g.checkReserve(size); err != nil {
		return nil, err
	}
	total := recordSize(uint64(size))
	g.lock.Lock(g.holder)
	pos, err := g.reserveLocked(total)
	if err != nil {
		g.lock.Unlock()
		return nil, err
	}
	// The header (owner and length) before the producer position: a
	// process killed between the two stores leaves an unpublished header
	// (overwritten by the next reservation); after them, a BUSY record that
	// names its owner. Release stores suffice (the lock's release and the
	// commit's CAS are the full barriers); consumers load the producer
	// position with acquire (or stronger) ordering.
	storeHeader(g.header(pos), uint32(size)|maps.RingBusyBit, g.holder.Tag)
	release.Store64((*uint64)(unsafe.Pointer(&g.prod.ProdPos)), pos+total)
	g.lock.Unlock()
	prefetchWrite(unsafe.Add(g.data, (pos+prefetchAhead)&g.mask))
	return g.payload(pos, uint64(size)), nil
}

func (g *Ring) checkReserve(size int) error {
	switch {
	case g.closed.Load():
		return ErrClosed
	case g.prodErr != nil:
		return g.prodErr
	case size < 0:
		return fmt.Errorf("%w: record size %d", ErrInvalid, size)
	case uint64(size) > MaxRecordSize || recordSize(uint64(size)) > g.size:
		return fmt.Errorf("%w: a %d-byte record takes %d bytes, the ring has %d", ErrTooBig, size, recordSize(uint64(size)), g.size)
	}
	return nil
}

// reserveLocked finds room for total bytes at the producer position, with
// the producer lock held, and returns the record's position. It applies the
// kernel's capacity rules (see maps/ringbuf.go).
func (g *Ring) reserveLocked(total uint64) (uint64, error) {
	p := g.prod
	prod := p.ProdPos.Load()
	pend := p.PendPos
	if pend > prod || prod-pend > g.size || pend&7 != 0 || prod&7 != 0 {
		// Not a value a producer wrote: start again from the consumer.
		pend = g.cons.ConsPos.Load()
		if err := g.checkPositions(pend, prod); err != nil {
			return 0, err
		}
	}
	// Move the pending position over records committed since.
	for pend < prod {
		l := g.header(pend).Len.Load()
		if l&maps.RingBusyBit != 0 {
			break
		}
		n := recordSize(uint64(l & maps.RingLenMask))
		if n > prod-pend {
			return 0, fmt.Errorf("%w: ring buffer %q: record at %d of %d bytes passes the producer position %d",
				ErrCorrupt, g.m.Name(), pend, n, prod)
		}
		pend += n
	}
	p.PendPos = pend
	next := prod + total
	if next-p.ConsCache > g.limit {
		p.ConsCache = g.cons.ConsPos.Load()
		if next-p.ConsCache > g.limit {
			p.Drops.Add(1)
			return 0, ErrFull // no formatting: a producer may retry at full speed
		}
	}
	if !g.user && next-pend > g.mask {
		p.Drops.Add(1)
		return 0, ErrFull
	}
	return prod, nil
}

// Submit commits a record Reserve returned: consumers may now read it.
// flags are NoWakeup or ForceWakeup; 0 wakes a sleeping consumer only if it
// waits for exactly this record (the kernel's adaptive rule). Other flag
// bits are ignored, as by bpf_ringbuf_submit.
func (g *Ring) Submit(rec []byte, flags uint64) error { return g.commit(rec, flags, false) }

// Discard drops a record Reserve returned: consumers skip it. flags are as
// for Submit.
func (g *Ring) Discard(rec []byte, flags uint64) error { return g.commit(rec, flags, true) }

func (g *Ring) commit(rec []byte, flags uint64, discard bool) error {
	if g.closed.Load() {
		return ErrClosed
	}
	p := unsafe.Pointer(unsafe.SliceData(rec))
	off := uintptr(p) - uintptr(g.data) - maps.RingHeaderSize
	if p == nil || off >= uintptr(g.size) || off&7 != 0 {
		return fmt.Errorf("%w: the record was not reserved in this ring", ErrInvalid)
	}
	h := (*recHeader)(unsafe.Add(g.data, off))
	l := h.Len.Load()
	if l&maps.RingBusyBit == 0 {
		return fmt.Errorf("%w: the record was already submitted or discarded", ErrInvalid)
	}
	nl := l &^ maps.RingBusyBit
	if discard {
		nl |= maps.RingDiscardBit
	}
	if !h.Len.CompareAndSwap(l, nl) {
		return fmt.Errorf("%w: the record was already submitted or discarded", ErrInvalid)
	}
	g.wake(uint64(off), flags)
	return nil
}

// wake applies the wake-up rules after a record at data offset recOff was
// committed. Only a consumer that announced it sleeps is woken; the
// consumer announces itself (Sleepers) before it checks the ring one last
// time, and the record was committed before Sleepers is read here, so one
// of the two always sees the other.
func (g *Ring) wake(recOff, flags uint64) {
	if flags&ForceWakeup == 0 && flags&NoWakeup != 0 {
		return
	}
	c := g.cons
	if c.Sleepers.Load() == 0 {
		return
	}
	if flags&ForceWakeup == 0 && c.ConsPos.Load()&g.mask != recOff {
		return
	}
	c.Seq.Add(1)
	futex.WakeAll(&c.Seq)
	g.prod.Wakeups.Add(1)
}

// Output copies data into a new record and submits it (bpf_ringbuf_output).
// flags other than NoWakeup and ForceWakeup are ErrInvalid. A full ring is
// ErrFull, which also matches EAGAIN.
func (g *Ring) Output(data []byte, flags uint64) error {
	if flags&^wakeupFlags != 0 {
		return fmt.Errorf("%w: output flags %#x", ErrInvalid, flags)
	}
	rec, err := g.Reserve(len(data))
	if err != nil {
		if err == ErrFull {
			return errOutputFull
		}
		return err
	}
	copy(rec, data)
	return g.commit(rec, flags, false)
}
