package programs

import (
	"unsafe"

	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/ringbuf"
	"github.com/userbpf/userbpf/shm"
	"github.com/userbpf/userbpf/vm"
)

// run is the host state of one invocation, reachable from helpers through
// vm.Machine.Host.
type run struct {
	region *shm.Region
	rcu    *rcu.Domain
	cpu    int
	// readerSlot is the slot of the run's read-side section (-1: unknown).
	readerSlot int
	holder     *lock.Holder
	// m is the run's machine; it records the spin lock the program holds
	// (HeldLock: the kernel allows one), which the VM may take itself.
	m *vm.Machine
	// reserved are the ring-buffer records reserved and not yet submitted
	// or discarded, by payload address.
	reserved []reservation
	rings    *ringCache
	// dyn is the dynptr a bpf_user_ringbuf_drain callback gets (data
	// address and size, as the first words of the kernel's struct
	// bpf_dynptr_kern), and dynSample the sample it describes; valid
	// during the callback.
	dyn       [2]uint64
	dynSample []byte
	// graph is the program's graph types and maps (nil without), g the
	// objects this run holds references on.
	graph *progGraph
	g     graphRun
}

type reservation struct {
	addr uintptr
	rec  []byte
	ring *ringbuf.Ring
}

// cleanup releases what a run left behind: the kernel's verifier refuses
// programs that exit holding a lock or a reservation; a run that stops
// early (an error, the budget) can leave them, so they are released here.
func (r *run) cleanup() (leftLock bool, leftRecords int) {
	if a := r.m.HeldLock(); a != 0 {
		(*lock.SpinLock)(addrPtr(a)).Unlock()
		r.m.SetHeldLock(0)
		leftLock = true
	}
	for _, res := range r.reserved {
		res.ring.Discard(res.rec, 0)
	}
	leftRecords = len(r.reserved)
	r.reserved = r.reserved[:0]
	if len(r.g.refs) > 0 {
		r.graphCleanup() // owned objects dropped, non-owning references ended
	}
	r.m.SlowUnlock = false
	return leftLock, leftRecords
}

func hostOf(m *vm.Machine) *run { return m.Host.(*run) }

// mapArg decodes a map reference argument.
func mapArg(m *vm.Machine, ref uint64) (*maps.Map, bool) {
	h, ok := m.Map(ref)
	if !ok {
		return nil, false
	}
	mp, ok := h.(*maps.Map)
	return mp, ok
}

// ptrOf is the address of a region pointer as the program sees it.
func ptrOf(p unsafe.Pointer) uint64 { return uint64(uintptr(p)) }

// addrPtr turns an address the VM has checked into a pointer (region
// memory the host mapped, so not a Go object the collector moves).
func addrPtr(a uint64) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }
