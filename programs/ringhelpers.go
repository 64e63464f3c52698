package programs

import (
	"fmt"
	"sync"
	"unsafe"

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
	b, err := readArg(m, data, uint32(size), "bpf_ringbuf_output data")
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

// helperUserRingbufDrain calls the callback with a dynptr-like pointer to
// each sample: here the callback gets (sample address, ctx) and the sample
// is readable for the call's duration.
func helperUserRingbufDrain(m *vm.Machine, mref, cb, cbctx, flags, _ uint64) (uint64, error) {
	g, err := ringArg(m, mref, "bpf_user_ringbuf_drain")
	if err != nil {
		return 0, err
	}
	if !vm.IsCallback(cb) {
		return 0, fmt.Errorf("bpf_user_ringbuf_drain: R2 %#x is not a callback", cb)
	}
	var cbErr error
	n, err := g.Drain(func(sample []byte) bool {
		if len(sample) == 0 {
			return false
		}
		a := uintptr(unsafe.Pointer(&sample[0]))
		m.AllowRange(a, uintptr(len(sample)), false)
		r, err := m.CallFunc(cb, uint64(a), cbctx, 0, 0, 0)
		m.RevokeRange(a)
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
