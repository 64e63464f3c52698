package programs

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/vm"
)

// Helper numbers (enum bpf_func_id).
const (
	fnMapLookupElem       = 1
	fnMapUpdateElem       = 2
	fnMapDeleteElem       = 3
	fnMapPushElem         = 87
	fnMapPopElem          = 88
	fnMapPeekElem         = 89
	fnSpinLock            = 93
	fnSpinUnlock          = 94
	fnRingbufOutput       = 130
	fnRingbufReserve      = 131
	fnRingbufSubmit       = 132
	fnRingbufDiscard      = 133
	fnRingbufQuery        = 134
	fnForEachMapElem      = 164
	fnMapLookupPercpuElem = 195
	fnDynptrRead          = 201
	fnDynptrData          = 203
	fnUserRingbufDrain    = 209
)

// readArg returns n bytes of program memory at addr, or an error naming
// the helper (what) and its argument (arg); two strings, so the hot path
// never builds one.
func readArg(m *vm.Machine, addr uint64, n uint32, what, arg string) ([]byte, error) {
	b, ok := m.Bytes(addr, uint64(n), false)
	if !ok {
		return nil, fmt.Errorf("%s %s: %d bytes at %#x are not memory the program may read", what, arg, n, addr)
	}
	return b, nil
}

// handOut lets the program use a map value for the rest of the run.
func handOut(m *vm.Machine, mp *maps.Map, p unsafe.Pointer) uint64 {
	m.AllowRange(uintptr(p), uintptr(mp.ProgValueSize()), mp.Flags()&maps.FlagRdOnlyProg == 0)
	return ptrOf(p)
}

// lookupFor is bpf_map_lookup_elem on CPU cpu's copy: the value's
// address (handed to the program), an inner map's reference for a
// map-in-map, or 0 (NULL).
func lookupFor(m *vm.Machine, name string, mref, key uint64, cpu int) (uint64, error) {
	mp, ok := mapArg(m, mref)
	if !ok {
		return 0, fmt.Errorf("%s: R1 %#x is not a map", name, mref)
	}
	k, err := readArg(m, key, mp.KeySize(), name, "key")
	if err != nil {
		return 0, err
	}
	if t := mp.Type(); t == maps.ArrayOfMaps || t == maps.HashOfMaps {
		inner, err := mp.InnerMap(k)
		if err != nil || inner == nil {
			return 0, nil
		}
		return m.NewMapRef(inner), nil
	}
	if cpu < 0 || cpu >= mp.NumCPU() {
		return 0, nil
	}
	p := mp.ProgLookup(k, cpu)
	if p == nil {
		return 0, nil
	}
	return handOut(m, mp, p), nil
}

func helperMapLookup(m *vm.Machine, mref, key, _, _, _ uint64) (uint64, error) {
	return lookupFor(m, "bpf_map_lookup_elem", mref, key, hostOf(m).cpu)
}

func helperMapLookupPercpu(m *vm.Machine, mref, key, cpu, _, _ uint64) (uint64, error) {
	return lookupFor(m, "bpf_map_lookup_percpu_elem", mref, key, int(min(cpu, 1<<31)))
}

func helperMapUpdate(m *vm.Machine, mref, key, value, flags, _ uint64) (uint64, error) {
	mp, ok := mapArg(m, mref)
	if !ok {
		return 0, fmt.Errorf("bpf_map_update_elem: R1 %#x is not a map", mref)
	}
	k, err := readArg(m, key, mp.KeySize(), "bpf_map_update_elem", "key")
	if err != nil {
		return 0, err
	}
	if t := mp.Type(); t == maps.ArrayOfMaps || t == maps.HashOfMaps {
		return neg(unix.EINVAL), nil // programs cannot change an outer map (as in the kernel)
	}
	v, err := readArg(m, value, mp.ProgValueSize(), "bpf_map_update_elem", "value")
	if err != nil {
		return 0, err
	}
	if err := mp.ProgUpdate(k, v, flags, hostOf(m).cpu, hostOf(m).readerSlot); err != nil {
		return negErrno(err), nil
	}
	return 0, nil
}

func helperMapDelete(m *vm.Machine, mref, key, _, _, _ uint64) (uint64, error) {
	mp, ok := mapArg(m, mref)
	if !ok {
		return 0, fmt.Errorf("bpf_map_delete_elem: R1 %#x is not a map", mref)
	}
	k, err := readArg(m, key, mp.KeySize(), "bpf_map_delete_elem", "key")
	if err != nil {
		return 0, err
	}
	if err := mp.ProgDelete(k); err != nil {
		return negErrno(err), nil
	}
	return 0, nil
}

func helperMapPush(m *vm.Machine, mref, value, flags, _, _ uint64) (uint64, error) {
	mp, ok := mapArg(m, mref)
	if !ok {
		return 0, fmt.Errorf("bpf_map_push_elem: R1 %#x is not a map", mref)
	}
	v, err := readArg(m, value, mp.ValueSize(), "bpf_map_push_elem", "value")
	if err != nil {
		return 0, err
	}
	if err := mp.ProgPush(v, flags); err != nil {
		return negErrno(err), nil
	}
	return 0, nil
}

func popPeek(name string, pop bool) vm.HelperFunc {
	return func(m *vm.Machine, mref, value, _, _, _ uint64) (uint64, error) {
		mp, ok := mapArg(m, mref)
		if !ok {
			return 0, fmt.Errorf("%s: R1 %#x is not a map", name, mref)
		}
		dst, ok := m.Bytes(value, uint64(mp.ValueSize()), true)
		if !ok {
			return 0, fmt.Errorf("%s: %d bytes at %#x are not memory the program may write", name, mp.ValueSize(), value)
		}
		var err error
		if pop {
			err = mp.ProgPop(dst)
		} else {
			err = mp.ProgPeek(dst)
		}
		if err != nil {
			clear(dst)
			return negErrno(err), nil
		}
		return 0, nil
	}
}

// helperForEachMapElem calls the callback for each element: cb(map, key,
// value, ctx); a callback returning 1 stops the walk. It returns the
// number of elements visited.
func helperForEachMapElem(m *vm.Machine, mref, cb, cbctx, flags, _ uint64) (uint64, error) {
	mp, ok := mapArg(m, mref)
	if !ok {
		return 0, fmt.Errorf("bpf_for_each_map_elem: R1 %#x is not a map", mref)
	}
	if flags != 0 {
		return neg(unix.EINVAL), nil
	}
	if !vm.IsCallback(cb) {
		return 0, fmt.Errorf("bpf_for_each_map_elem: R2 %#x is not a callback", cb)
	}
	keyBuf := make([]byte, 2*mp.KeySize())
	cur, next := keyBuf[:mp.KeySize()], keyBuf[mp.KeySize():]
	m.AllowRange(uintptr(unsafe.Pointer(&keyBuf[0])), uintptr(len(keyBuf)), false)
	defer m.RevokeRange(uintptr(unsafe.Pointer(&keyBuf[0])))
	n := uint64(0)
	var prev []byte
	for mp.NextKey(prev, next) == nil {
		copy(cur, next)
		prev = cur
		p := mp.ProgLookup(cur, hostOf(m).cpu)
		if p == nil {
			continue
		}
		n++
		r, err := m.CallFunc(cb, mref, ptrOf(unsafe.Pointer(&cur[0])), handOut(m, mp, p), cbctx, 0)
		if err != nil {
			return 0, err
		}
		if r == 1 {
			break
		}
	}
	return n, nil
}
