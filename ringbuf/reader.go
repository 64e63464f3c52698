package ringbuf

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/futex"
	"github.com/userbpf/userbpf/internal/release"
	"github.com/userbpf/userbpf/maps"
)

// Record is one record read from a ring.
type Record struct {
	// RawSample is the record's payload (a copy: it stays valid).
	RawSample []byte
	// Remaining is the number of bytes still unread in the ring after this
	// record (headers and padding included).
	Remaining int
}

// How a Reader waits. It spins a little before it sleeps (a record often
// arrives within microseconds under load), then sleeps on the ring's futex
// without a timeout when the ring is empty. When the oldest record is BUSY
// it sleeps with a timeout that starts at firstProbe and doubles up to
// maxProbe: on each expiry it asks whether the record's producer still
// lives. A live producer's Submit wakes the reader at once.
var (
	spinRounds = 128
	firstProbe = 2 * time.Millisecond
	maxProbe   = 100 * time.Millisecond
)

// testHookSleep, if set (by tests only), runs when a reader has announced
// that it sleeps and found nothing to read, just before it waits.
var testHookSleep func()

// Reader consumes a RINGBUF. It owns the ring's consumer side: one Reader
// at a time per ring, in all processes (a second one gets ErrBusy), unless
// the owner died, in which case the new Reader takes over where it
// stopped. Read and ReadInto must not be called concurrently; Close may be
// called at any time and interrupts them.
type Reader struct {
	ring   *Ring
	closed atomic.Bool
	// mu is held by a read from start to end (sleeps included); Close
	// takes it after waking the read, so that the reader's position is
	// published by exactly one goroutine.
	mu    sync.Mutex
	probe time.Duration

	// The BUSY record the reader last stopped at.
	busyPos uint64

	// The reader's consumer position, the last one it published, the
	// producer position it last read, and how far it reads before it
	// publishes (see next).
	cons, published, prod, publishEvery uint64
}

// NewReader makes this process the consumer of RINGBUF m. It needs a
// writable handle on a map that is not frozen (ErrPermission), as the
// kernel's consumer maps the consumer page writable.
func NewReader(m *maps.Map) (*Reader, error) {
	if m.Type() != maps.RingBuf {
		return nil, fmt.Errorf("%w: map %q is a %s; only a ringbuf has a user-space reader (drain a user_ringbuf)", ErrInvalid, m.Name(), m.Type())
	}
	if _, err := m.RingMemory(true); err != nil {
		return nil, err
	}
	g, err := Open(m)
	if err != nil {
		return nil, err
	}
	if err := g.claimConsumer(); err != nil {
		g.Close()
		return nil, err
	}
	cons := g.cons.ConsPos.Load()
	prod := g.prod.ProdPos.Load()
	if err := g.checkPositions(cons, prod); err != nil {
		g.releaseConsumer()
		g.Close()
		return nil, err
	}
	return &Reader{ring: g, probe: firstProbe, cons: cons, published: cons, prod: cons, publishEvery: g.size / 8}, nil
}

// Ring is the reader's view of the ring (Query, Stats).
func (r *Reader) Ring() *Ring { return r.ring }

// Close gives up the consumer side and interrupts a Read in progress, which
// returns ErrClosed.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.kick()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publish()
	r.ring.releaseConsumer()
	return r.ring.Close()
}

// kick wakes this reader if it sleeps (Close, context cancellation).
func (r *Reader) kick() {
	c := r.ring.cons
	c.Seq.Add(1)
	futex.WakeAll(&c.Seq)
}

// Read returns the next record, sleeping until one is committed. It returns
// ctx's error if ctx is done while it waits (records already there are
// returned first), and ErrClosed after Close.
func (r *Reader) Read(ctx context.Context) (Record, error) {
	var rec Record
	err := r.ReadInto(ctx, &rec)
	return rec, err
}

// ReadInto is Read into rec, reusing rec.RawSample's storage: with a
// sample buffer large enough and a context that is never done, it does not
// allocate.
func (r *Reader) ReadInto(ctx context.Context, rec *Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	spins := 0
	for {
		if r.closed.Load() {
			return ErrClosed
		}
		got, busy, err := r.next(rec)
		if err != nil || got {
			return err
		}
		if spins < spinRounds {
			spins++
			if spins%16 == 0 {
				runtime.Gosched()
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r.sleep(ctx, busy)
		spins = spinRounds / 2
	}
}

// next consumes the oldest committed record into rec, skipping discarded
// ones. got is false when there is none; busy says a BUSY record stopped it.
//
// The reader keeps its own copy of the consumer position (it owns the
// consumer side) and of the producer position it last read: it reads the
// producer's cache line again only when it has consumed up to there. It
// publishes its position when it has caught up with that copy, when it
// stops at a BUSY record, and at least every size/8 bytes: producers then
// see room in batches instead of one record at a time, which keeps the two
// processes from trading cache lines on every record.
func (r *Reader) next(rec *Record) (got, busy bool, err error) {
	g := r.ring
	for {
		if r.cons == r.prod {
			r.publish()
			prod := g.prod.ProdPos.Load()
			if prod == r.cons {
				return false, false, nil
			}
			if err := g.checkPositions(r.cons, prod); err != nil {
				return false, false, err
			}
			r.prod = prod
		}
		cons := r.cons
		l := g.header(cons).Len.Load()
		if l&maps.RingBusyBit != 0 {
			r.publish()
			if cons != r.busyPos {
				r.busyPos, r.probe = cons, firstProbe
			}
			return false, true, nil
		}
		n := uint64(l & maps.RingLenMask)
		total := recordSize(n)
		if total > r.prod-cons {
			return false, false, fmt.Errorf("%w: ring buffer %q: a %d-byte record at %d passes the producer position %d",
				ErrCorrupt, g.m.Name(), n, cons, r.prod)
		}
		r.cons = cons + total
		if cons+prefetchAhead < r.prod {
			prefetchRead(unsafe.Add(g.data, (cons+prefetchAhead)&g.mask))
		}
		if l&maps.RingDiscardBit == 0 {
			rec.RawSample = append(rec.RawSample[:0], g.payload(cons, n)...)
			rec.Remaining = int(r.prod - r.cons)
			if r.cons == r.prod || r.cons-r.published >= r.publishEvery {
				r.publish()
			}
			return true, false, nil
		}
	}
}

// publish stores the reader's position in the ring, if it moved.
func (r *Reader) publish() {
	if r.cons != r.published {
		release.Store64((*uint64)(unsafe.Pointer(&r.ring.cons.ConsPos)), r.cons)
		r.published = r.cons
	}
}

// ready reports whether next would make progress (or fail) now.
func (r *Reader) ready() bool {
	g := r.ring
	if r.cons == g.prod.ProdPos.Load() {
		return false
	}
	return g.header(r.cons).Len.Load()&maps.RingBusyBit == 0
}

// sleep waits on the ring's futex until a producer (or Close, or ctx)
// wakes it. When a BUSY record blocks the ring, the wait is bounded and its
// expiry checks the record's owner.
func (r *Reader) sleep(ctx context.Context, busy bool) {
	c := r.ring.cons
	seq := c.Seq.Load()
	c.Sleepers.Add(1)
	defer c.Sleepers.Add(^uint32(0))
	if r.ready() || r.closed.Load() {
		return
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, r.kick)
	}
	var timeout time.Duration
	if busy {
		timeout = r.probe
	}
	if testHookSleep != nil {
		testHookSleep()
	}
	woken := futex.Wait(&c.Seq, seq, timeout)
	if stop != nil {
		stop()
	}
	if !woken && busy {
		r.ring.recoverBusy(r.busyPos)
		r.probe = min(2*r.probe, maxProbe)
	}
}

// recoverBusy discards the record at pos if it is still BUSY and the
// process that reserved it is dead, and reports whether it did. Only the
// consumer side's owner calls it.
func (g *Ring) recoverBusy(pos uint64) bool {
	if g.cons.ConsPos.Load() != pos {
		return false
	}
	h := g.header(pos)
	l := h.Len.Load()
	if l&maps.RingBusyBit == 0 || g.region.Alive(h.Owner.Load()) {
		return false
	}
	if !h.Len.CompareAndSwap(l, l&^maps.RingBusyBit|maps.RingDiscardBit) {
		return false
	}
	g.prod.Recovered.Add(1)
	return true
}
