package ringbuf

import (
	"fmt"
	"time"

	"github.com/userbpf/userbpf/internal/futex"
	"github.com/userbpf/userbpf/maps"
)

// Kernel limits of bpf_user_ringbuf_drain.
const (
	// MaxDrainSamples is how many samples one Drain looks at, at most
	// (BPF_MAX_USER_RINGBUF_SAMPLES).
	MaxDrainSamples = 128 * 1024
	// maxDynptrSize is the largest sample a drain hands out (a dynptr's
	// size limit, 16 MiB - 1).
	maxDynptrSize = 1<<24 - 1
)

// Drain consumes the committed samples of a USER_RINGBUF, oldest first,
// calling fn on each payload in place (fn must not keep the slice), as
// bpf_user_ringbuf_drain does for programs: it stops at a BUSY sample, when
// the ring is empty, when fn returns true, or after MaxDrainSamples samples
// (discarded ones included). It returns how many samples fn saw.
//
// flags are NoWakeup and ForceWakeup (others: ErrInvalid). A drain that
// finds another one in progress returns ErrBusy. A sample that passes the
// producer position, or a producer position that is not 8-aligned, is
// ErrInvalid; a sample larger than the ring or than 16 MiB - 1 is ErrTooBig
// (the kernel's errors for a misbehaving user-space producer). A BUSY sample
// whose producer died is discarded (see docs/ringbuf.md).
func (g *Ring) Drain(fn func(sample []byte) (stop bool), flags uint64) (int, error) {
	switch {
	case g.closed.Load():
		return 0, ErrClosed
	case !g.user:
		return 0, fmt.Errorf("%w: map %q is a ringbuf; drain is for user_ringbuf (read a ringbuf with a Reader)", ErrInvalid, g.m.Name())
	case flags&^wakeupFlags != 0:
		return 0, fmt.Errorf("%w: drain flags %#x", ErrInvalid, flags)
	}
	if err := g.claimConsumer(); err != nil {
		return 0, err
	}
	samples, discarded, err := g.drain(fn)
	g.releaseConsumer()
	if flags&ForceWakeup != 0 || flags&NoWakeup == 0 && samples > 0 {
		g.wakeSpace()
	}
	return samples - discarded, err
}

func (g *Ring) drain(fn func([]byte) bool) (samples, discarded int, err error) {
	c := g.cons
	stop := false
	for ; samples < MaxDrainSamples && !stop; samples++ {
		prod := g.prod.ProdPos.Load()
		if prod%8 != 0 {
			return samples, discarded, fmt.Errorf("%w: producer position %d is not 8-aligned", ErrInvalid, prod)
		}
		cons := c.ConsPos.Load()
		if cons >= prod {
			break
		}
		if cons%8 != 0 {
			return samples, discarded, fmt.Errorf("%w: consumer position %d is not 8-aligned", ErrCorrupt, cons)
		}
		h := g.header(cons)
		l := h.Len.Load()
		n := uint64(l & maps.RingLenMask)
		total := recordSize(n)
		switch {
		case total > prod-cons:
			return samples, discarded, fmt.Errorf("%w: a %d-byte sample at %d passes the producer position %d", ErrInvalid, n, cons, prod)
		case total > g.size || n > maxDynptrSize:
			return samples, discarded, fmt.Errorf("%w: a %d-byte sample", ErrTooBig, n)
		}
		if l&maps.RingDiscardBit != 0 {
			c.ConsPos.Store(cons + total)
			discarded++
			continue
		}
		if l&maps.RingBusyBit != 0 {
			if !g.recoverBusyRateLimited(cons) {
				break
			}
			c.ConsPos.Store(cons + total)
			discarded++
			continue
		}
		stop = fn(g.payload(cons, n))
		c.ConsPos.Store(cons + total)
	}
	return samples, discarded, nil
}

// recoverBusyRateLimited is recoverBusy for drains, which do not sleep: it
// asks about the owner of a given BUSY record at most once per maxProbe.
func (g *Ring) recoverBusyRateLimited(pos uint64) bool {
	now := time.Now()
	g.probeMu.Lock()
	due := pos != g.probePos || !now.Before(g.probeDue)
	if due {
		g.probePos, g.probeDue = pos, now.Add(firstProbe)
	}
	g.probeMu.Unlock()
	return due && g.recoverBusy(pos)
}

// wakeSpace wakes producers that sleep until a drain makes room (the
// kernel's EPOLLOUT wake-up of a user ring's producers), if any do.
func (g *Ring) wakeSpace() {
	p := g.prod
	if p.SpaceSleepers.Load() != 0 {
		p.SpaceSeq.Add(1)
		futex.WakeAll(&p.SpaceSeq)
	}
}
