package vm

import (
	_ "unsafe" // go:linkname

	"golang.org/x/sys/unix"
)

// nanotime is the runtime's CLOCK_MONOTONIC reading (through the vDSO),
// the same clock as the kernel's bpf_ktime_get_ns.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

func clockNs(id int32) uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(id, &ts) != nil {
		return uint64(nanotime())
	}
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}
