package programs

import (
	"errors"
	"sync"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/ringbuf"
	"github.com/userbpf/userbpf/shm"
	"github.com/userbpf/userbpf/vm"
)

// TraceMap is the ring buffer of a region that bpf_trace_printk writes to
// (one record per message) and `userbpf prog tracelog` reads: the region's
// trace_pipe. It is created by the first message.
const TraceMap = "userbpf_trace"

// traceSize is the trace ring's size: messages are dropped (and counted)
// when nobody reads.
const traceSize = 1 << 20

var traceRings sync.Map // *shm.Region → *ringbuf.Ring

// traceTo returns the Machine.Trace sink writing to the region's trace ring.
func traceTo(r *shm.Region, d *rcu.Domain) func(*vm.Machine, []byte) {
	return func(_ *vm.Machine, msg []byte) {
		g, err := TraceRing(r, d)
		if err != nil {
			return // tracing never fails a program
		}
		g.Output(msg, 0)
	}
}

// TraceRing opens (creating it if needed) the region's trace ring.
func TraceRing(r *shm.Region, d *rcu.Domain) (*ringbuf.Ring, error) {
	if g, ok := traceRings.Load(r); ok {
		return g.(*ringbuf.Ring), nil
	}
	m, err := maps.Open(r, d, TraceMap, 0)
	if errors.Is(err, shm.ErrNotExist) {
		m, err = maps.Create(r, d, maps.Spec{Name: TraceMap, Type: maps.RingBuf, MaxEntries: traceSize})
		if errors.Is(err, shm.ErrExist) { // another process created it first
			m, err = maps.Open(r, d, TraceMap, 0)
		}
	}
	if err != nil {
		return nil, err
	}
	g, err := ringbuf.Open(m)
	if err != nil {
		return nil, err
	}
	actual, loaded := traceRings.LoadOrStore(r, g)
	if loaded {
		g.Close()
	} else {
		// Forget the ring (and unmap it) when this process detaches.
		r.OnReap(func(slot int, _ uint32) {
			if slot == r.Slot() {
				traceRings.Delete(r)
				g.Close()
			}
		})
	}
	return actual.(*ringbuf.Ring), nil
}
