package maps

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/futex"
)

// Map watches: change notifications across processes, which kernel maps do
// not have. Writers append an event to the map's event log after every
// successful update or delete (also from batches, LRU evictions and
// WithLock); any number of watchers in any processes read the log at their
// own pace and sleep on a futex while it has nothing new.
//
// The log is a ring that writers overwrite without waiting for anyone: a
// slow watcher never slows or blocks a writer. A watcher that falls more
// than a ring behind gets one EventOverflow telling how many events it
// lost, and can resynchronize by dumping the map.
//
// Event log (a region block, desc.Watch points to it):
//
//	0   Head u64      tickets handed out: the next event's sequence number
//	8   Wake u32      futex word, bumped after a commit when Sleepers > 0
//	12  Sleepers u32  watchers asleep (or about to sleep) on Wake
//	16  Cap u32       events in the ring (a power of two)
//	20  SlotSize u32  bytes per slot
//	24  KeySize u32   bytes of key in a slot
//	28  ValueSize u32 bytes of value in a slot (the syscall value size)
//	32  Slots [Cap]
//
// Slot (SlotSize bytes):
//
//	0   Seq u64   2×seq+1 while event seq is written, 2×seq+2 once committed
//	8   Kind u32  EventUpdate, EventDelete, EventEvict
//	12  HasValue u32
//	16  Key [KeySize], then Value [ValueSize], each rounded up to 8
//
// A writer takes a ticket (one atomic add on Head), marks the slot in
// progress, fills it and commits it; a reader copies a slot and checks Seq
// before and after (a seqlock), so it never returns a torn event. A writer
// killed between taking a ticket and committing leaves a slot in progress:
// watchers wait a little for it, then count it as lost and go on.
const (
	watchLogHeader  = 32
	watchSlotHeader = 16
	// DefaultWatchEvents is the number of events a map's log holds.
	DefaultWatchEvents = 4096
	// stuckSlotWait is how long a watcher waits for a slot a writer has
	// claimed but not committed, when later events are already committed.
	stuckSlotWait = 20 * time.Millisecond
)

// EventKind says what happened to a key.
type EventKind uint32

// Event kinds.
const (
	EventUpdate   EventKind = 1 // the key was created or its value changed
	EventDelete   EventKind = 2 // the key was deleted (delete, lookup-and-delete, a batch)
	EventEvict    EventKind = 3 // an LRU map evicted the key to make room
	EventOverflow EventKind = 4 // the watcher fell behind: Lost events were overwritten
)

// String is the kind's name as `map watch` prints it.
func (k EventKind) String() string {
	switch k {
	case EventUpdate:
		return "update"
	case EventDelete:
		return "delete"
	case EventEvict:
		return "evict"
	case EventOverflow:
		return "overflow"
	}
	return fmt.Sprintf("event_%d", uint32(k))
}

// Event is one change of a watched map.
type Event struct {
	Kind  EventKind
	Seq   uint64 // position in the map's event log
	Key   []byte
	Value []byte // for updates, if the watcher asked for values
	Lost  uint64 // EventOverflow: how many events were lost
}

type watchLog struct {
	Head      atomic.Uint64
	Wake      atomic.Uint32
	Sleepers  atomic.Uint32
	Cap       uint32
	SlotSize  uint32
	KeySize   uint32
	ValueSize uint32
}

type watchSlot struct {
	Seq      atomic.Uint64
	Kind     uint32
	HasValue uint32
}

// watchLogOf returns the map's event log, creating it if create is set.
func (m *Map) watchLogOf(create bool) (*watchLog, error) {
	if off := m.d.Watch.Load(); off != 0 || !create {
		if off == 0 {
			return nil, nil
		}
		return m.checkedLog(off)
	}
	ks, vs := roundUp8(m.keySize), roundUp8(uint32(m.UserValueSize()))
	slot := watchSlotHeader + ks + vs
	off, err := m.region.Alloc(watchLogHeader + uint64(DefaultWatchEvents)*uint64(slot))
	if err != nil {
		return nil, fmt.Errorf("%w: event log: %v", ErrNoMemory, err)
	}
	l := (*watchLog)(m.region.Pointer(off))
	l.Cap, l.SlotSize, l.KeySize, l.ValueSize = DefaultWatchEvents, slot, m.keySize, uint32(m.UserValueSize())
	if !m.d.Watch.CompareAndSwap(0, off) {
		m.region.Free(off) // another watcher created it first
		off = m.d.Watch.Load()
	}
	return m.checkedLog(off)
}

// checkedLog validates a log another process wrote before trusting it.
func (m *Map) checkedLog(off uint64) (*watchLog, error) {
	b, err := m.region.Bytes(off, watchLogHeader)
	if err != nil {
		return nil, err
	}
	l := (*watchLog)(unsafe.Pointer(&b[0]))
	if l.Cap == 0 || l.Cap&(l.Cap-1) != 0 || l.KeySize != m.keySize || l.ValueSize != uint32(m.UserValueSize()) ||
		l.SlotSize != watchSlotHeader+roundUp8(l.KeySize)+roundUp8(l.ValueSize) {
		return nil, fmt.Errorf("event log of map %q is corrupt", m.name)
	}
	if _, err := m.region.Bytes(off, watchLogHeader+uint64(l.Cap)*uint64(l.SlotSize)); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *watchLog) slot(seq uint64) (*watchSlot, []byte) {
	p := unsafe.Add(unsafe.Pointer(l), watchLogHeader+uintptr(seq&uint64(l.Cap-1))*uintptr(l.SlotSize))
	return (*watchSlot)(p), unsafe.Slice((*byte)(unsafe.Add(p, watchSlotHeader)), l.SlotSize-watchSlotHeader)
}

// emit appends an event if anyone has ever watched the map: the cost for
// an unwatched map is one load.
func (m *Map) emit(kind EventKind, key, value []byte) {
	off := m.d.Watch.Load()
	if off == 0 {
		return
	}
	l, err := m.checkedLog(off)
	if err != nil {
		return // a corrupt log must not fail the write that already happened
	}
	seq := l.Head.Add(1) - 1
	s, data := l.slot(seq)
	s.Seq.Store(2*seq + 1)
	s.Kind = uint32(kind)
	copy(data[:l.KeySize], key)
	vo := roundUp8(l.KeySize)
	if len(value) == int(l.ValueSize) {
		copy(data[vo:vo+l.ValueSize], value)
		s.HasValue = 1
	} else {
		s.HasValue = 0
	}
	s.Seq.Store(2*seq + 2)
	if l.Sleepers.Load() > 0 {
		l.Wake.Add(1)
		futex.WakeAll(&l.Wake)
	}
}

// emitStored is emit for an element whose value is read from region
// memory (in-place changes: WithLock, evictions).
func (m *Map) emitStored(kind EventKind, key []byte, p unsafe.Pointer) {
	if m.d.Watch.Load() == 0 {
		return
	}
	var v []byte
	if p != nil {
		v = make([]byte, m.UserValueSize())
		if m.typ.perCPU() {
			m.copyOutPerCPU(v, p)
		} else {
			m.copyOut(v, p)
		}
	}
	m.emit(kind, key, v)
}

// WatchOptions configure a watcher.
type WatchOptions struct {
	// Values asks for the new value with each update event.
	Values bool
}

// Watcher receives a map's change events. It is used by one goroutine.
type Watcher struct {
	m      *Map
	log    *watchLog
	pos    uint64
	values bool
}

// Watch starts watching the map: Next returns every update and delete
// made after this call, in any process, in order.
func (m *Map) Watch(o WatchOptions) (*Watcher, error) {
	if err := m.readable(); err != nil {
		return nil, m.errorf("watch", err)
	}
	l, err := m.watchLogOf(true)
	if err != nil {
		return nil, m.errorf("watch", err)
	}
	return &Watcher{m: m, log: l, pos: l.Head.Load(), values: o.Values}, nil
}

// Next waits for the next event and returns it. It sleeps (on a futex, not
// polling) until a writer commits an event or ctx is done.
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	l := w.log
	var stuckSince time.Time
	for {
		if ev, ok := w.try(&stuckSince); ok {
			return ev, nil
		}
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		l.Sleepers.Add(1)
		wake := l.Wake.Load()
		if ev, ok := w.try(&stuckSince); ok {
			l.Sleepers.Add(^uint32(0))
			return ev, nil
		}
		wait := 100 * time.Millisecond // to notice ctx and stuck slots
		if !stuckSince.IsZero() {
			wait = stuckSlotWait
		}
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(dl), time.Microsecond))
		}
		futex.Wait(&l.Wake, wake, wait)
		l.Sleepers.Add(^uint32(0))
	}
}

// try returns the event at the watcher's position if there is one.
func (w *Watcher) try(stuckSince *time.Time) (Event, bool) {
	l := w.log
	head := l.Head.Load()
	if head <= w.pos {
		return Event{}, false
	}
	if head-w.pos > uint64(l.Cap) {
		lost := head - uint64(l.Cap) - w.pos
		w.pos += lost
		return Event{Kind: EventOverflow, Seq: w.pos, Lost: lost}, true
	}
	s, data := l.slot(w.pos)
	seq := s.Seq.Load()
	switch {
	case seq == 2*w.pos+2:
		ev := Event{Kind: EventKind(s.Kind), Seq: w.pos, Key: append([]byte(nil), data[:l.KeySize]...)}
		if w.values && s.HasValue != 0 {
			vo := roundUp8(l.KeySize)
			ev.Value = append([]byte(nil), data[vo:vo+l.ValueSize]...)
		}
		if s.Seq.Load() != seq { // overwritten while copying
			return w.overflowAt(), true
		}
		w.pos++
		*stuckSince = time.Time{}
		return ev, true
	case seq > 2*w.pos+2:
		return w.overflowAt(), true
	}
	// Claimed, not committed. Wait a little; if it stays so while later
	// events are committed, its writer died: count it lost.
	if stuckSince.IsZero() {
		*stuckSince = time.Now()
		return Event{}, false
	}
	if time.Since(*stuckSince) < stuckSlotWait {
		return Event{}, false
	}
	*stuckSince = time.Time{}
	w.pos++
	return Event{Kind: EventOverflow, Seq: w.pos - 1, Lost: 1}, true
}

// overflowAt skips to the oldest event still in the ring.
func (w *Watcher) overflowAt() Event {
	head := w.log.Head.Load()
	next := w.pos + 1
	if head > uint64(w.log.Cap) {
		next = max(next, head-uint64(w.log.Cap)+1)
	}
	lost := next - w.pos
	w.pos = next
	return Event{Kind: EventOverflow, Seq: w.pos, Lost: lost}
}

// Close stops watching. Writers are not affected.
func (w *Watcher) Close() error { return nil }
