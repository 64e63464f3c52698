package shm

import (
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/futex"
)

// CPU is a leased virtual CPU. While a process holds the lease no other
// caller (in any process) gets the same CPU, so per-CPU values indexed by
// it have a single writer, as under the kernel's per-CPU rule.
type CPU struct {
	r  *Region
	id int
}

// ID is the virtual CPU's number, 0 ≤ ID < NumCPU.
func (c CPU) ID() int { return c.id }

// Release ends the lease and wakes one process waiting for a CPU.
func (c CPU) Release() {
	c.r.vcpu(c.id).Owner.Store(0)
	c.r.wakeCPUWaiters()
}

// A lease waiter that has slept leaseFirstCheck without a wake-up looks for
// dead holders, and backs off to one look per leaseMaxCheck. (Variables so
// that a test can stretch them and prove a waiter was woken, not timed out.)
var (
	leaseFirstCheck = 2 * time.Millisecond
	leaseMaxCheck   = 50 * time.Millisecond
)

func (r *Region) vcpu(i int) *vcpuSlot {
	return (*vcpuSlot)(unsafe.Add(r.base, r.hdrCopy.vcpuOff+uint64(i)*64))
}

// LeaseCPU leases a free virtual CPU, sleeping on a futex while all are
// taken. A sleeper that waits long checks for leases held by dead processes
// and takes them back.
func (r *Region) LeaseCPU() (CPU, error) {
	if r.closed.Load() {
		return CPU{}, ErrClosed
	}
	if c, ok := r.tryLeaseCPU(); ok {
		return c, nil
	}
	check := leaseFirstCheck
	for {
		if r.closed.Load() {
			return CPU{}, ErrClosed
		}
		r.hdr.VCPUWaiters.Add(1)
		seq := r.hdr.VCPUSeq.Load()
		c, ok := r.tryLeaseCPU()
		if ok {
			r.hdr.VCPUWaiters.Add(^uint32(0))
			return c, nil
		}
		woken := futex.Wait(&r.hdr.VCPUSeq, seq, check)
		r.hdr.VCPUWaiters.Add(^uint32(0))
		if !woken {
			r.ReapDead()
			check = min(2*check, leaseMaxCheck)
		}
	}
}

// TryLeaseCPU leases a free virtual CPU if there is one.
func (r *Region) TryLeaseCPU() (CPU, bool) {
	if r.closed.Load() {
		return CPU{}, false
	}
	return r.tryLeaseCPU()
}

func (r *Region) tryLeaseCPU() (CPU, bool) {
	n := r.hdrCopy.ncpu
	start := r.cpuNext.Add(1)
	for i := uint32(0); i < n; i++ {
		id := int((start + i) % n)
		v := r.vcpu(id)
		if v.Owner.Load() == 0 && v.Owner.CompareAndSwap(0, r.holder.Tag) {
			v.Leases.Add(1)
			return CPU{r: r, id: id}, true
		}
	}
	return CPU{}, false
}

// wakeCPUWaiters wakes one lease waiter. The waiter announces itself before
// it re-scans, and we look after the CPU was freed, so a wake-up is never
// lost: either its scan finds the CPU or the sequence bump fails its wait.
func (r *Region) wakeCPUWaiters() {
	if r.hdr.VCPUWaiters.Load() > 0 {
		r.hdr.VCPUSeq.Add(1)
		futex.Wake(&r.hdr.VCPUSeq, 1)
	}
}

// LeasedCPUs counts the virtual CPUs currently leased.
func (r *Region) LeasedCPUs() int {
	n := 0
	for i := 0; i < int(r.hdrCopy.ncpu); i++ {
		if r.vcpu(i).Owner.Load() != 0 {
			n++
		}
	}
	return n
}
