package bench

import (
	"runtime"
	"time"

	"github.com/userbpf/userbpf/internal/benchprog"
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
		start := benchprog.ThreadCPU()
		fn(n)
		if d := benchprog.ThreadCPU() - start; d > 20*time.Millisecond || n > 1<<30 {
			n = max(1, int(float64(n)*float64(50*time.Millisecond)/float64(max(d, 1))))
			break
		}
		n *= 4
	}
	var ns []float64
	for range rounds {
		start := benchprog.ThreadCPU()
		fn(n)
		ns = append(ns, float64((benchprog.ThreadCPU()-start).Nanoseconds())/float64(n))
	}
	return median(ns)
}
