package vm

import "sync/atomic"

// atomic executes a BPF_ATOMIC instruction as a real hardware atomic on
// the target word (sync/atomic), so programs and user-space code using
// atomics on the same memory agree. The address must be naturally aligned
// (the kernel's verifier insists too; misaligned locked instructions may
// trap on split-lock-detecting machines).
func (m *Machine) atomic(x xinsn, pc int, r *[16]uint64) error {
	var size uint64
	write := true
	switch x.op {
	case opLoadAcqB, opStoreRelB:
		size = 1
	case opLoadAcqH, opStoreRelH:
		size = 2
	case opAtomicAdd64, opAtomicOr64, opAtomicAnd64, opAtomicXor64,
		opAtomicFetchAdd64, opAtomicFetchOr64, opAtomicFetchAnd64, opAtomicFetchXor64,
		opXchg64, opCmpXchg64, opLoadAcqDW, opStoreRelDW:
		size = 8
	default:
		size = 4
	}
	dst, src := x.regs&15, x.regs>>4
	base := dst
	switch x.op {
	case opLoadAcqB, opLoadAcqH, opLoadAcqW, opLoadAcqDW:
		base, write = src, false
	}
	a := r[base] + uint64(int64(x.off))
	if !m.CanAccess(a, size, write) {
		return m.memFault(pc, a, size, write)
	}
	if a&(size-1) != 0 {
		return m.alignFault(pc, a, size)
	}
	p := ptr(a)
	s := &r[src]
	switch x.op {
	case opAtomicAdd32:
		atomic.AddUint32((*uint32)(p), uint32(*s))
	case opAtomicOr32:
		atomic.OrUint32((*uint32)(p), uint32(*s))
	case opAtomicAnd32:
		atomic.AndUint32((*uint32)(p), uint32(*s))
	case opAtomicXor32:
		xor32((*uint32)(p), uint32(*s))
	case opAtomicFetchAdd32:
		*s = uint64(atomic.AddUint32((*uint32)(p), uint32(*s)) - uint32(*s))
	case opAtomicFetchOr32:
		*s = uint64(atomic.OrUint32((*uint32)(p), uint32(*s)))
	case opAtomicFetchAnd32:
		*s = uint64(atomic.AndUint32((*uint32)(p), uint32(*s)))
	case opAtomicFetchXor32:
		*s = uint64(xor32((*uint32)(p), uint32(*s)))
	case opXchg32:
		*s = uint64(atomic.SwapUint32((*uint32)(p), uint32(*s)))
	case opCmpXchg32:
		r[0] = uint64(cmpxchg32((*uint32)(p), uint32(r[0]), uint32(*s)))

	case opAtomicAdd64:
		atomic.AddUint64((*uint64)(p), *s)
	case opAtomicOr64:
		atomic.OrUint64((*uint64)(p), *s)
	case opAtomicAnd64:
		atomic.AndUint64((*uint64)(p), *s)
	case opAtomicXor64:
		xor64((*uint64)(p), *s)
	case opAtomicFetchAdd64:
		*s = atomic.AddUint64((*uint64)(p), *s) - *s
	case opAtomicFetchOr64:
		*s = atomic.OrUint64((*uint64)(p), *s)
	case opAtomicFetchAnd64:
		*s = atomic.AndUint64((*uint64)(p), *s)
	case opAtomicFetchXor64:
		*s = xor64((*uint64)(p), *s)
	case opXchg64:
		*s = atomic.SwapUint64((*uint64)(p), *s)
	case opCmpXchg64:
		r[0] = cmpxchg64((*uint64)(p), r[0], *s)

	// Acquire loads and release stores: sync/atomic is sequentially
	// consistent, which is stronger. Bytes and halfwords go through the
	// aligned word that contains them.
	case opLoadAcqB:
		r[dst] = uint64(uint8(loadSub(a, 8)))
	case opLoadAcqH:
		r[dst] = uint64(uint16(loadSub(a, 16)))
	case opLoadAcqW:
		r[dst] = uint64(atomic.LoadUint32((*uint32)(p)))
	case opLoadAcqDW:
		r[dst] = atomic.LoadUint64((*uint64)(p))
	case opStoreRelB:
		storeSub(a, 8, *s)
	case opStoreRelH:
		storeSub(a, 16, *s)
	case opStoreRelW:
		atomic.StoreUint32((*uint32)(p), uint32(*s))
	case opStoreRelDW:
		atomic.StoreUint64((*uint64)(p), *s)
	}
	return nil
}

func xor32(p *uint32, v uint32) uint32 {
	for {
		old := atomic.LoadUint32(p)
		if atomic.CompareAndSwapUint32(p, old, old^v) {
			return old
		}
	}
}

func xor64(p *uint64, v uint64) uint64 {
	for {
		old := atomic.LoadUint64(p)
		if atomic.CompareAndSwapUint64(p, old, old^v) {
			return old
		}
	}
}

// cmpxchg32 stores v if *p == want and returns the value *p had: a failed
// comparison reports the value it observed, which is what the hardware
// instruction returns.
func cmpxchg32(p *uint32, want, v uint32) uint32 {
	for {
		old := atomic.LoadUint32(p)
		if old != want {
			return old
		}
		if atomic.CompareAndSwapUint32(p, old, v) {
			return old
		}
	}
}

func cmpxchg64(p *uint64, want, v uint64) uint64 {
	for {
		old := atomic.LoadUint64(p)
		if old != want {
			return old
		}
		if atomic.CompareAndSwapUint64(p, old, v) {
			return old
		}
	}
}

// subShift is the bit position of the naturally aligned bits-wide field
// at a within its aligned 32-bit word.
func subShift(a uint64, bits uint) uint {
	sh := uint(a&3) * 8
	if hostBigEndian {
		sh = 32 - bits - sh
	}
	return sh
}

func loadSub(a uint64, bits uint) uint32 {
	return atomic.LoadUint32((*uint32)(ptr(a&^3))) >> subShift(a, bits)
}

func storeSub(a uint64, bits uint, v uint64) {
	w := (*uint32)(ptr(a &^ 3))
	sh := subShift(a, bits)
	mask := uint32(1)<<bits - 1
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&^(mask<<sh)|(uint32(v)&mask)<<sh) {
			return
		}
	}
}
