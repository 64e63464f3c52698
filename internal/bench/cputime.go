package bench

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// cpuPerOp is perOp on the calling thread's CPU time instead of the wall
// clock: time the thread spends descheduled is left out. It is what the
// kernel's BPF_PROG_RUN reports for a repeated run — bpf_test_timer stops
// its clock around every cond_resched() — so the two compare like for
// like on a busy machine.
func cpuPerOp(rounds int, fn func(n int)) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := 1
	for {
		start := threadCPU()
		fn(n)
		if d := threadCPU() - start; d > 20*time.Millisecond || n > 1<<30 {
			n = max(1, int(float64(n)*float64(50*time.Millisecond)/float64(max(d, 1))))
			break
		}
		n *= 4
	}
	var ns []float64
	for range rounds {
		start := threadCPU()
		fn(n)
		ns = append(ns, float64((threadCPU()-start).Nanoseconds())/float64(n))
	}
	return median(ns)
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
