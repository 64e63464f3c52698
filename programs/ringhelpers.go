package programs

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/ringbuf"
	"github.com/userbpf/userbpf/vm"
)

// ringCache keeps one open ring per ring-buffer map for this process:
// opening maps the ring's data twice, which is not for every run.
type ringCache struct {
	mu    sync.Mutex
	rings map[*maps.Map]*ringbuf.Ring
}

func (c *ringCache) get(mp *maps.Map) (*ringbuf.Ring, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.rings[mp]; ok {
		return g, nil
	}
	g, err := ringbuf.Open(mp)
	if err != nil {
		return nil, err
	}
	if c.rings == nil {
		c.rings = map[*maps.Map]*ringbuf.Ring{}
	}
	c.rings[mp] = g
	return g, nil
}

func ringArg(m *vm.Machine, mref uint64, name string) (*ringbuf.Ring, error) {
	mp, ok := mapArg(m, mref)
	if !ok || mp.Type() != maps.RingBuf && mp.Type() != maps.UserRingBuf {
		return nil, fmt.Errorf("%s: R1 %#x is not a ring buffer map", name, mref)
	}
	return hostOf(m).rings.get(mp)
}

func helperRingbufOutput(m *vm.Machine, mref, data, size, flags, _ uint64) (uint64, error) {
	g, err := ringArg(m, mref, "bpf_ringbuf_output")
	if err != nil {
		return 0, err
	}
	b, err := readArg(m, data, uint32(size), "bpf_ringbuf_output", "data")
	if err != nil {
		return 0, err
	}
	if err := g.Output(b, flags); err != nil {
		return negErrno(err), nil
	}
	return 0, nil
}

func helperRingbufReserve(m *vm.Machine, mref, size, flags, _, _ uint64) (uint64, error) {
	g, err := ringArg(m, mref, "bpf_ringbuf_reserve")
	if err != nil {
		return 0, err
	}
	if flags != 0 || size == 0 || size > uint64(g.Size()) {
		return 0, nil // nothing reserved: a NULL record
	}
	rec, err := g.Reserve(int(size))
	if err != nil || len(rec) == 0 {
		return 0, nil
	}
	h := hostOf(m)
	addr := uintptr(unsafe.Pointer(&rec[0]))
	h.reserved = append(h.reserved, reservation{addr: addr, rec: rec, ring: g})
	m.AllowRange(addr, uintptr(len(rec)), true)
	return uint64(addr), nil
}

func commitHelper(name string, discard bool) vm.HelperFunc {
	return func(m *vm.Machine, addr, flags, _, _, _ uint64) (uint64, error) {
		h := hostOf(m)
		for i, res := range h.reserved {
			if uint64(res.addr) != addr {
				continue
			}
			h.reserved = append(h.reserved[:i], h.reserved[i+1:]...)
			m.RevokeRange(res.addr)
			if discard {
				res.ring.Discard(res.rec, flags)
			} else {
				res.ring.Submit(res.rec, flags)
			}
			return 0, nil
		}
		return 0, fmt.Errorf("%s: %#x is not a record the program reserved", name, addr)
	}
}

func helperRingbufQuery(m *vm.Machine, mref, flags, _, _, _ uint64) (uint64, error) {
	g, err := ringArg(m, mref, "bpf_ringbuf_query")
	if err != nil {
		return 0, err
	}
	return g.Query(flags), nil
}

// helperUserRingbufDrain calls the callback for each sample user space
// wrote, as cb(dynptr, ctx): the dynptr (read with bpf_dynptr_read or
// bpf_dynptr_data) describes the sample, read-only, for the call.
func helperUserRingbufDrain(m *vm.Machine, mref, cb, cbctx, flags, _ uint64) (uint64, error) {
	g, err := ringArg(m, mref, "bpf_user_ringbuf_drain")
	if err != nil {
		return 0, err
	}
	if !vm.IsCallback(cb) {
		return 0, fmt.Errorf("bpf_user_ringbuf_drain: R2 %#x is not a callback", cb)
	}
	h := hostOf(m)
	dynAddr := uintptr(unsafe.Pointer(&h.dyn[0]))
	m.AllowRange(dynAddr, unsafe.Sizeof(h.dyn), false)
	outerDyn, outerSample := h.dyn, h.dynSample // a drain inside a drain's callback
	defer func() {
		h.dyn, h.dynSample = outerDyn, outerSample
		if outerSample == nil {
			m.RevokeRange(dynAddr)
		}
	}()
	var cbErr error
	n, err := g.Drain(func(sample []byte) bool {
		if len(sample) == 0 {
			return false
		}
		a := uintptr(unsafe.Pointer(&sample[0]))
		m.AllowRange(a, uintptr(len(sample)), false)
		h.dyn[0], h.dyn[1], h.dynSample = uint64(a), uint64(len(sample)), sample
		r, err := m.CallFunc(cb, uint64(dynAddr), cbctx, 0, 0, 0)
		m.RevokeRange(a)
		h.dynSample = nil
		if err != nil {
			cbErr = err
			return true
		}
		return r == 1
	}, flags)
	if cbErr != nil {
		return 0, cbErr
	}
	if err != nil {
		return negErrno(err), nil
	}
	return uint64(n), nil
}

// dynArg checks that a program passed the dynptr of the sample being
// drained.
func dynArg(m *vm.Machine, ptr uint64, name string) ([]byte, error) {
	h := hostOf(m)
	if h.dynSample == nil || ptr != uint64(uintptr(unsafe.Pointer(&h.dyn[0]))) {
		return nil, fmt.Errorf("%s: %#x is not a live dynptr", name, ptr)
	}
	return h.dynSample, nil
}

// helperDynptrRead is bpf_dynptr_read(dst, len, src, offset, flags).
func helperDynptrRead(m *vm.Machine, dst, n, src, off, flags uint64) (uint64, error) {
	sample, err := dynArg(m, src, "bpf_dynptr_read")
	if err != nil {
		return 0, err
	}
	out, ok := m.Bytes(dst, n, true)
	if !ok {
		return 0, fmt.Errorf("bpf_dynptr_read: %d bytes at %#x are not memory the program may write", n, dst)
	}
	if flags != 0 {
		return neg(unix.EINVAL), nil
	}
	if off > uint64(len(sample)) || n > uint64(len(sample))-off {
		clear(out)
		return neg(unix.E2BIG), nil
	}
	copy(out, sample[off:off+n])
	return 0, nil
}

// helperDynptrData is bpf_dynptr_data(ptr, offset, len): the address of
// the sample's bytes (read-only, as the kernel's user ring-buffer dynptrs
// are), or NULL if the range does not fit.
func helperDynptrData(m *vm.Machine, ptr, off, n, _, _ uint64) (uint64, error) {
	sample, err := dynArg(m, ptr, "bpf_dynptr_data")
	if err != nil {
		return 0, err
	}
	if off > uint64(len(sample)) || n > uint64(len(sample))-off {
		return 0, nil
	}
	return uint64(uintptr(unsafe.Pointer(&sample[0]))) + off, nil
}
