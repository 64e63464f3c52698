package ringbuf

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/shm"
)

// Wake-up flags of Submit, Discard, Output and Drain, as in the kernel UAPI.
const (
	// NoWakeup (BPF_RB_NO_WAKEUP) never wakes a sleeping consumer.
	NoWakeup = 1
	// ForceWakeup (BPF_RB_FORCE_WAKEUP) always wakes a sleeping consumer;
	// it wins over NoWakeup.
	ForceWakeup = 2

	wakeupFlags = NoWakeup | ForceWakeup
)

// Query flags (enum bpf_ringbuf_query_flags / BPF_RB_*).
const (
	// AvailData is the number of bytes not yet consumed (producer position
	// minus consumer position).
	AvailData = 0
	// RingSize is the size of the data area.
	RingSize = 1
	// ConsPos is the consumer position.
	ConsPos = 2
	// ProdPos is the producer position.
	ProdPos = 3
)

// MaxRecordSize is the largest payload a record may have
// (RINGBUF_MAX_RECORD_SZ, UINT_MAX / 4): the header keeps 30 bits of length.
const MaxRecordSize = maps.RingLenMask

// Ring is one process's view of a ring buffer map: the shared pages, and the
// data area mapped twice back to back so that every record is contiguous.
// Its producer methods may be called from any goroutine. Close it before
// the region it lives in.
type Ring struct {
	m      *maps.Map
	region *shm.Region
	holder *lock.Holder
	cons   *maps.RingConsumerPage
	prod   *maps.RingProducerPage
	lock   *lock.SpinLock
	data   unsafe.Pointer // the double mapping
	view   []byte         // the same, for munmap
	size   uint64
	mask   uint64
	limit  uint64 // how far the producer position may run ahead of the consumer's
	user   bool

	prodErr error // why this handle may not produce, if it may not
	closed  atomic.Bool

	// Drain's rate limit on asking whether a BUSY record's owner lives.
	probeMu  sync.Mutex
	probePos uint64
	probeDue time.Time
}

// Open maps the ring buffer map m (RINGBUF or USER_RINGBUF) into this
// process. Producing needs a writable handle on a map that is not frozen:
// otherwise Reserve and Output return ErrPermission.
func Open(m *maps.Map) (*Ring, error) {
	mem, err := m.RingMemory(false)
	if err != nil {
		return nil, err
	}
	g := &Ring{m: m, region: mem.Region, holder: mem.Region.Holder(), cons: mem.Consumer(), prod: mem.Producer(),
		size: mem.Size, mask: mem.Size - 1, user: mem.User}
	g.lock = &g.prod.Lock
	g.limit = g.mask
	if g.user {
		g.limit = g.size // libbpf's user ring fills all of it
	}
	if _, err := m.RingMemory(true); err != nil {
		g.prodErr = err
	}
	g.view, err = doubleMap(mem.Data(), uintptr(mem.Size))
	if err != nil {
		return nil, fmt.Errorf("ring buffer %q: mapping the data area twice: %w", m.Name(), err)
	}
	g.data = unsafe.Pointer(&g.view[0])
	return g, nil
}

// doubleMap maps the size bytes at src twice, back to back, at a new
// address: mremap with old_size 0 makes a second mapping of the same
// shared pages (the region is MAP_SHARED).
func doubleMap(src unsafe.Pointer, size uintptr) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, int(2*size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, err
	}
	base := unsafe.Pointer(&b[0])
	for i := uintptr(0); i < 2; i++ {
		_, _, e := unix.Syscall6(unix.SYS_MREMAP, uintptr(src), 0, size,
			unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, uintptr(unsafe.Add(base, i*size)), 0)
		if e != 0 {
			unix.Munmap(b)
			return nil, e
		}
	}
	return b, nil
}

// Close unmaps the ring from this process. Records it reserved and did not
// submit stay BUSY until a consumer finds this process gone (see
// docs/ringbuf.md).
func (g *Ring) Close() error {
	if g.closed.Swap(true) {
		return nil
	}
	return unix.Munmap(g.view)
}

// Map is the ring buffer's map handle.
func (g *Ring) Map() *maps.Map { return g.m }

// Size is the size of the data area in bytes (max_entries).
func (g *Ring) Size() int { return int(g.size) }

// Query returns one of the ring's positions or sizes, as
// bpf_ringbuf_query: AvailData, RingSize, ConsPos or ProdPos. Unknown flags
// give 0. The values are snapshots.
func (g *Ring) Query(flag uint64) uint64 {
	switch flag {
	case AvailData:
		prod := g.prod.ProdPos.Load()
		cons := g.cons.ConsPos.Load()
		return prod - cons
	case RingSize:
		return g.size
	case ConsPos:
		return g.cons.ConsPos.Load()
	case ProdPos:
		return g.prod.ProdPos.Load()
	}
	return 0
}

// Stats are a ring's counters, shared by every process using it.
type Stats struct {
	// ConsPos and ProdPos are the positions.
	ConsPos, ProdPos uint64
	// Drops counts reservations refused because the ring was full.
	Drops uint64
	// Wakeups counts futex wake calls made for sleeping consumers.
	Wakeups uint64
	// Recovered counts BUSY records of dead producers that a consumer
	// discarded.
	Recovered uint64
	// Takeovers counts consumer sides taken over from dead consumers.
	Takeovers uint64
	// Sleepers is the number of consumers asleep now.
	Sleepers uint32
	// Consumer is the owner tag of the consumer side (0: none).
	Consumer uint32
}

// Stats returns a snapshot of the ring's counters.
func (g *Ring) Stats() Stats {
	return Stats{
		ConsPos: g.cons.ConsPos.Load(), ProdPos: g.prod.ProdPos.Load(),
		Drops: g.prod.Drops.Load(), Wakeups: g.prod.Wakeups.Load(), Recovered: g.prod.Recovered.Load(),
		Takeovers: uint64(g.cons.Takeovers.Load()), Sleepers: g.cons.Sleepers.Load(), Consumer: g.cons.Owner.Load(),
	}
}

// recHeader is a record's 8-byte header (see maps/ringbuf.go).
type recHeader struct {
	Len   atomic.Uint32 // length | BUSY | DISCARD
	Owner atomic.Uint32 // the kernel's pg_off: here the reserving process's tag
}

// header returns the header of the record at logical position pos.
func (g *Ring) header(pos uint64) *recHeader {
	return (*recHeader)(unsafe.Add(g.data, pos&g.mask))
}

// payload returns the n bytes after the header at pos; n <= size - 8, and
// the double mapping makes them contiguous.
func (g *Ring) payload(pos, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(g.data, pos&g.mask+maps.RingHeaderSize)), n)
}

// recordSize is the space a record of payload n takes: round_up(n + 8, 8).
func recordSize(n uint64) uint64 { return (n + maps.RingHeaderSize + 7) &^ 7 }

// checkPositions validates the shared positions before they are used:
// another process may have written anything there.
func (g *Ring) checkPositions(cons, prod uint64) error {
	if cons > prod || prod-cons > g.size || cons&7 != 0 || prod&7 != 0 {
		return fmt.Errorf("%w: ring buffer %q: consumer position %d, producer position %d (size %d)",
			ErrCorrupt, g.m.Name(), cons, prod, g.size)
	}
	return nil
}

// claimConsumer makes this process the owner of the consumer side: free,
// or held by a process that died (taken over: its sleeper count is reset).
func (g *Ring) claimConsumer() error {
	c := g.cons
	tag := g.holder.Tag
	for {
		o := c.Owner.Load()
		if o == 0 {
			if c.Owner.CompareAndSwap(0, tag) {
				return nil
			}
			continue
		}
		if o == tag || g.region.Alive(o) {
			return fmt.Errorf("%w: ring buffer %q: another consumer (owner tag %#x) is attached", ErrBusy, g.m.Name(), o)
		}
		if c.Owner.CompareAndSwap(o, tag) {
			c.Takeovers.Add(1)
			c.Sleepers.Store(0)
			return nil
		}
	}
}

func (g *Ring) releaseConsumer() { g.cons.Owner.CompareAndSwap(g.holder.Tag, 0) }
