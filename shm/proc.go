package shm

import (
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/lock"
)

// Process-table slot word:
//
//	 63           32 31      22 21            2 1     0
//	+---------------+----------+---------------+-------+
//	|  pid / reaper |  unused  | generation    | state |
//	+---------------+----------+---------------+-------+
//
// The whole word is claimed with one CAS, so a slot is never seen alive
// without its pid. The generation grows each time the slot is claimed; an
// owner tag carries it, so a tag of a process that died and whose slot was
// reused names no one. While the slot is being reaped, bits 32-63 hold the
// reaper's tag instead of the pid, so claiming a reap (or taking over from
// a dead reaper) is one CAS too and two reapers never work on one slot.
//
// A slot's Start is zeroed before the slot is freed, so a process that has
// claimed a slot but not yet written its start time is checked by pid only,
// never against the previous occupant's start time.
const (
	procFree    = 0
	procAlive   = 1
	procReaping = 2

	genBits  = 20
	genMask  = 1<<genBits - 1
	slotBits = 10 // MaxProcs == 1 << slotBits
)

func procState(w uint64) uint64  { return w & 3 }
func procGen(w uint64) uint32    { return uint32(w>>2) & genMask }
func procPID(w uint64) int       { return int(w >> 32) }
func procReaper(w uint64) uint32 { return uint32(w >> 32) }

// reapingWord is slot word w claimed for reaping by the process tagged reaper.
func reapingWord(w uint64, reaper uint32) uint64 {
	return uint64(reaper)<<32 | uint64(procGen(w))<<2 | procReaping
}
func makeTag(slot int, gen uint32) uint32 { return uint32(slot) | gen<<slotBits }
func tagSlot(tag uint32) int              { return int(tag & (MaxProcs - 1)) }
func tagGen(tag uint32) uint32            { return tag >> slotBits & genMask }

func (r *Region) proc(i int) *procSlot {
	return (*procSlot)(unsafe.Add(r.base, r.hdrCopy.procOff+uint64(i)*64))
}

// register claims a process-table slot for this process.
func (r *Region) register() error {
	pid := os.Getpid()
	start := startTime(pid)
	for i := 1; i < MaxProcs; i++ {
		s := r.proc(i)
		w := s.Word.Load()
		if procState(w) != procFree {
			continue
		}
		gen := (procGen(w) + 1) & genMask
		if gen == 0 {
			gen = 1
		}
		if !s.Word.CompareAndSwap(w, uint64(pid)<<32|uint64(gen)<<2|procAlive) {
			continue
		}
		s.Start.Store(start)
		s.AllocInflight.Store(0)
		s.RetireRing.Store(0)
		s.Attached.Store(time.Now().UnixNano())
		r.slot, r.self = i, s
		r.holder = lock.Holder{Tag: makeTag(i, gen), Owners: r}
		return nil
	}
	return ErrTooManyProcs
}

// unregister frees this process's slot.
func (r *Region) unregister() {
	w := r.self.Word.Load()
	r.self.Start.Store(0)
	r.self.Word.CompareAndSwap(w, uint64(procGen(w))<<2|procFree)
}

// Alive reports whether tag names a live attached process: its slot still
// has the tag's generation, and the process with the recorded pid exists,
// is not a zombie, and started when the slot was claimed (so a reused pid
// is not mistaken for the owner). It implements lock.Owners.
func (r *Region) Alive(tag uint32) bool {
	if tag == r.holder.Tag {
		return true
	}
	slot := tagSlot(tag)
	if slot == 0 {
		return false
	}
	s := r.proc(slot)
	w := s.Word.Load()
	if procState(w) != procAlive || procGen(w) != tagGen(tag) {
		return false
	}
	return processAlive(procPID(w), s.Start.Load())
}

// NoteRecovery counts a lock taken over from a dead owner. It implements
// lock.Owners.
func (r *Region) NoteRecovery(k lock.Kind) {
	if k == lock.KindSpin {
		r.hdr.Counters[CounterSpinRecoveries].Add(1)
	} else {
		r.hdr.Counters[CounterMutexRecoveries].Add(1)
	}
}

// Process describes one process-table entry.
type Process struct {
	Slot     int
	Tag      uint32
	PID      int
	Alive    bool // false: died and not yet reaped
	Attached time.Time
}

// Processes lists the processes in the table, dead ones not yet reaped
// included.
func (r *Region) Processes() []Process {
	if r.closed.Load() {
		return nil
	}
	var ps []Process
	for i := 1; i < MaxProcs; i++ {
		s := r.proc(i)
		w := s.Word.Load()
		if procState(w) != procAlive {
			continue
		}
		tag := makeTag(i, procGen(w))
		ps = append(ps, Process{Slot: i, Tag: tag, PID: procPID(w), Alive: r.Alive(tag),
			Attached: time.Unix(0, s.Attached.Load())})
	}
	return ps
}

// OnReap registers fn to run when a process's slot is reaped (or this
// process detaches), before the slot is freed. Upper layers use it to take
// back what the process held in their own structures (RCU retire rings).
func (r *Region) OnReap(fn func(slot int, tag uint32)) {
	r.hookMu.Lock()
	r.reapHooks = append(r.reapHooks, fn)
	r.hookMu.Unlock()
}

func (r *Region) runReapHooks(slot int, tag uint32) {
	r.hookMu.Lock()
	hooks := append([]func(int, uint32){}, r.reapHooks...)
	r.hookMu.Unlock()
	for _, fn := range hooks {
		fn(slot, tag)
	}
}

// ReapDead finds processes that died while attached and takes back what
// they held: their RCU reader slots, virtual CPUs, retired blocks and any
// block caught mid-allocation. Locks they held are recovered separately,
// by their next waiter. It returns how many processes were reaped.
func (r *Region) ReapDead() int {
	if r.closed.Load() {
		return 0
	}
	n := 0
	for i := 1; i < MaxProcs; i++ {
		if i == r.slot {
			continue
		}
		s := r.proc(i)
		w := s.Word.Load()
		switch procState(w) {
		case procAlive:
			if processAlive(procPID(w), s.Start.Load()) {
				continue
			}
		case procReaping:
			// A reaper that died mid-reap is replaced; the steps are idempotent.
			if r.Alive(procReaper(w)) {
				continue
			}
		default:
			continue
		}
		mine := reapingWord(w, r.holder.Tag)
		if !s.Word.CompareAndSwap(w, mine) {
			continue
		}
		r.finishReap(i, s, mine)
		n++
	}
	return n
}

// finishReap releases everything slot i's dead process held and frees the slot.
func (r *Region) finishReap(i int, s *procSlot, w uint64) {
	tag := makeTag(i, procGen(w))
	// Reader slots first: the hooks may wait for a grace period, which
	// must not wait for the dead process's own readers.
	r.releaseOwnedCounted(tag, true)
	r.runReapHooks(i, tag)
	if off := s.AllocInflight.Swap(0); off != 0 && r.Free(off) == nil {
		r.hdr.Counters[CounterLeaksRecovered].Add(1)
	}
	s.Start.Store(0)
	if s.Word.CompareAndSwap(w, uint64(procGen(w))<<2|procFree) {
		r.hdr.Counters[CounterProcsReaped].Add(1)
	}
}

// releaseOwned frees the reader slots and virtual CPUs held under tag.
func (r *Region) releaseOwned(tag uint32) { r.releaseOwnedCounted(tag, false) }

func (r *Region) releaseOwnedCounted(tag uint32, count bool) {
	high := min(r.hdr.ReaderHigh.Load(), MaxReaders)
	for i := uint32(0); i < high; i++ {
		rs := r.readerSlot(int(i))
		// Own the slot before clearing its epoch: a slot cleared by someone
		// else and claimed by a new reader meanwhile must keep its epoch.
		if !rs.Owner.CompareAndSwap(tag, ReaderClearing|r.holder.Tag) {
			continue
		}
		rs.Epoch.Store(0)
		rs.Owner.Store(0)
		if count {
			r.hdr.Counters[CounterReadersReaped].Add(1)
		}
	}
	for i := 0; i < int(r.hdrCopy.ncpu); i++ {
		if r.vcpu(i).Owner.CompareAndSwap(tag, 0) {
			if count {
				r.hdr.Counters[CounterLeasesReaped].Add(1)
			}
			r.wakeCPUWaiters()
		}
	}
}

// RetireRing returns the word in process slot's table entry where the RCU
// layer keeps that process's retire ring.
func (r *Region) RetireRing(slot int) *atomic.Uint64 { return &r.proc(slot).RetireRing }

// Slot is this process's process-table slot.
func (r *Region) Slot() int { return r.slot }
