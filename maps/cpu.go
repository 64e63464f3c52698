package maps

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// currentCPU returns the CPU the calling thread runs on (getcpu(2)); a
// syscall from user space runs on some CPU, and per-CPU LRU lists are
// chosen by it, so this is how an insert from user space picks its list.
func currentCPU() int {
	var cpu uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); e != 0 {
		return 0
	}
	return int(cpu)
}
