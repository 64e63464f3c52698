package vm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// DefaultHelpers returns a new table of the helpers that need no maps:
// time, randomness, ids, trace_printk, probe_read*, and bpf_loop. The host
// adds the map, ring-buffer, spin-lock and tail-call helpers.
func DefaultHelpers() HelperTable {
	var t HelperTable
	t.Set(FnKtimeGetNs, helperKtimeGetNs)
	t.Set(FnTracePrintk, helperTracePrintk)
	t.Set(FnGetPrandomU32, helperGetPrandomU32)
	t.Set(FnGetSmpProcessorID, helperGetSmpProcessorID)
	t.Set(FnGetCurrentPidTgid, helperGetCurrentPidTgid)
	t.Set(FnGetCurrentUIDGid, helperGetCurrentUIDGid)
	t.Set(FnGetCurrentComm, helperGetCurrentComm)
	t.Set(FnProbeRead, helperProbeRead)
	t.Set(FnProbeReadUser, helperProbeRead)
	t.Set(FnProbeReadKernel, helperProbeRead)
	t.Set(FnProbeReadStr, helperProbeReadStr)
	t.Set(FnProbeReadUserStr, helperProbeReadStr)
	t.Set(FnProbeReadKernelStr, helperProbeReadStr)
	t.Set(FnJiffies64, helperJiffies64)
	t.Set(FnKtimeGetBootNs, helperKtimeGetBootNs)
	t.Set(FnKtimeGetCoarseNs, helperKtimeGetCoarseNs)
	t.Set(FnLoop, helperLoop)
	return t
}

// HZ is the tick rate bpf_jiffies64 counts in: jiffies are CLOCK_MONOTONIC
// in units of 1/HZ s (the kernel's CONFIG_HZ is commonly 250 or 1000;
// user space cannot read the kernel's jiffies counter itself).
var HZ uint64 = 250

func helperKtimeGetNs(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return uint64(nanotime()), nil
}

func helperKtimeGetBootNs(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return clockNs(unix.CLOCK_BOOTTIME), nil
}

func helperKtimeGetCoarseNs(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return clockNs(unix.CLOCK_MONOTONIC_COARSE), nil
}

func helperJiffies64(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return clockNs(unix.CLOCK_MONOTONIC_COARSE) / (1e9 / HZ), nil
}

func helperGetPrandomU32(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return uint64(m.nextRand()), nil
}

func helperGetSmpProcessorID(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return uint64(m.CPU), nil
}

func helperGetCurrentPidTgid(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return uint64(m.TGID)<<32 | uint64(m.PID), nil
}

func helperGetCurrentUIDGid(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
	return uint64(m.GID)<<32 | uint64(m.UID), nil
}

// writableArg returns the program's buffer argument [addr, addr+size),
// or an error stopping the run (the kernel's verifier would reject such a
// program).
func (m *Machine) writableArg(addr, size uint64, what string) ([]byte, error) {
	b, ok := m.Bytes(addr, size, true)
	if !ok {
		return nil, m.fault(m.pc, ErrMemory, fmt.Sprintf("%s: %d bytes at %#x are not writable by the program", what, size, addr))
	}
	return b, nil
}

// bpf_get_current_comm(buf, size): the comm, NUL-padded to size.
func helperGetCurrentComm(m *Machine, buf, size, _, _, _ uint64) (uint64, error) {
	b, err := m.writableArg(buf, size, "get_current_comm")
	if err != nil {
		return 0, err
	}
	if size == 0 {
		return Errno(EINVAL), nil
	}
	clear(b)
	n := 0
	for n < len(m.Comm) && m.Comm[n] != 0 {
		n++
	}
	copy(b[:len(b)-1], m.Comm[:n])
	return 0, nil
}

// bpf_probe_read_{kernel,user}(dst, size, src): copy size bytes from any
// memory the program may read; on a fault zero dst and return -EFAULT.
func helperProbeRead(m *Machine, dst, size, src, _, _ uint64) (uint64, error) {
	d, err := m.writableArg(dst, size, "probe_read")
	if err != nil {
		return 0, err
	}
	s, ok := m.Bytes(src, size, false)
	if !ok {
		clear(d)
		return Errno(EFAULT), nil
	}
	copy(d, s)
	return 0, nil
}

// bpf_probe_read_{kernel,user}_str(dst, size, src): copy a NUL-terminated
// string of at most size-1 bytes plus NUL; return its length including
// the NUL, or -EFAULT (dst zeroed) if the source is unreadable before a
// NUL.
func helperProbeReadStr(m *Machine, dst, size, src, _, _ uint64) (uint64, error) {
	d, err := m.writableArg(dst, size, "probe_read_str")
	if err != nil {
		return 0, err
	}
	if size == 0 {
		return 0, nil
	}
	for i := uint64(0); i < size-1; i++ {
		c, ok := m.Bytes(src+i, 1, false)
		if !ok {
			clear(d)
			return Errno(EFAULT), nil
		}
		d[i] = c[0]
		if c[0] == 0 {
			return i + 1, nil
		}
	}
	d[size-1] = 0
	return size, nil
}

// bpf_loop(nr_loops, callback_fn, callback_ctx, flags): call
// callback_fn(i, callback_ctx) for i = 0.. until it returns nonzero;
// return the number of calls made. -EINVAL for flags, -E2BIG for more
// than 1<<23 loops, as the kernel.
func helperLoop(m *Machine, nr, fn, ctx, flags, _ uint64) (uint64, error) {
	if flags != 0 {
		return Errno(EINVAL), nil
	}
	n := uint32(nr)
	if n > 1<<23 {
		return Errno(E2BIG), nil
	}
	if !IsCallback(fn) {
		return 0, m.fault(m.pc, ErrInvalid, fmt.Sprintf("bpf_loop: callback %#x is not a function reference", fn))
	}
	for i := uint32(0); i < n; i++ {
		ret, err := m.CallFunc(fn, uint64(i), ctx, 0, 0, 0)
		if err != nil {
			return 0, err
		}
		if ret != 0 {
			return uint64(i) + 1, nil
		}
	}
	return uint64(n), nil
}
