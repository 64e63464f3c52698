// Package bench holds the suites behind `userbpf bench`. Each suite measures
// userbpf and, where the kernel has an equivalent, the kernel in the same
// run, and reports medians and ratios: these machines are noisy, so a
// ratio measured side by side is the number to quote.
package bench

import (
	"os/exec"
	"slices"
	"time"
)

// Result is one measured figure.
type Result struct {
	Suite  string  `json:"suite"`
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Kernel float64 `json:"kernel,omitempty"` // the kernel's figure for the same thing, if any
	Ratio  float64 `json:"ratio,omitempty"`  // how many times better userbpf is than the kernel
	Target string  `json:"target,omitempty"` // the goal the issue sets
	Note   string  `json:"note,omitempty"`
}

// Env is what a suite needs from its caller.
type Env struct {
	// Dir is where the suite creates its scratch regions.
	Dir string
	// Child returns a command that runs a bench child (see RunChild) in a
	// separate process: the CLI re-executes itself.
	Child func(args ...string) *exec.Cmd
	// Progress, if set, is told what is being measured.
	Progress func(what string)
}

func (e *Env) say(what string) {
	if e.Progress != nil {
		e.Progress(what)
	}
}

// perOp runs fn(n) in rounds sized to last about 50 ms each and returns the
// median nanoseconds per operation over the rounds.
func perOp(rounds int, fn func(n int)) float64 {
	n := 1
	for {
		start := time.Now()
		fn(n)
		if d := time.Since(start); d > 20*time.Millisecond || n > 1<<30 {
			n = max(1, int(float64(n)*float64(50*time.Millisecond)/float64(d)))
			break
		}
		n *= 4
	}
	var ns []float64
	for range rounds {
		start := time.Now()
		fn(n)
		ns = append(ns, float64(time.Since(start).Nanoseconds())/float64(n))
	}
	return median(ns)
}

// latencies times count single calls of fn and returns their median and
// 99th percentile in nanoseconds.
func latencies(count int, fn func()) (p50, p99 float64) {
	ds := make([]float64, count)
	for i := range ds {
		start := time.Now()
		fn()
		ds[i] = float64(time.Since(start).Nanoseconds())
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
