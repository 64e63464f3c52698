package conformance

import (
	"fmt"
	"strings"
	"time"
)

// Options configure a conformance run.
type Options struct {
	// Dir is the scratch directory for our side's region; "" means a new
	// temporary directory, removed afterwards.
	Dir string
	// Seed seeds the random sequences; 0 picks one from the clock. The
	// seed used is in the report, and every random-sequence failure prints
	// it so that the run can be replayed.
	Seed int64
	// RandomOps is the number of operations of each random sequence; 0
	// means DefaultRandomOps.
	RandomOps int
	// Match, if not empty, runs only the cases whose name contains it.
	Match string
}

// DefaultRandomOps is the length of each random sequence when
// Options.RandomOps is 0.
const DefaultRandomOps = 3000

// Report is the outcome of a run. It is meant to be printed as JSON.
type Report struct {
	// Skipped is set when bpf(2) is unavailable; SkipReason says why, and
	// no case ran.
	Skipped    bool   `json:"skipped"`
	SkipReason string `json:"skip_reason,omitempty"`
	// Kernel is the kernel release the cases ran against.
	Kernel string `json:"kernel"`
	// NumCPU is the number of possible CPUs (per-CPU value copies).
	NumCPU int `json:"ncpu"`
	// Seed seeded the random sequences.
	Seed int64 `json:"seed"`
	// Passed and Failed count the cases.
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	// Duration is the wall time of the run.
	Duration time.Duration `json:"duration_ns"`
	// Cases lists every case in the order it ran.
	Cases []CaseResult `json:"cases"`
}

// CaseResult is one case's outcome.
type CaseResult struct {
	// Name identifies the case: group/type/what.
	Name string `json:"name"`
	// Pass is true when the kernel and userbpf agreed on everything the
	// case compared (and a documented deviation behaved as documented).
	Pass bool `json:"pass"`
	// Ops is the number of operations the case ran on each side.
	Ops int `json:"ops"`
	// Diffs are the mismatches, one precise message each.
	Diffs []string `json:"diffs,omitempty"`
	// Deviation, when set, labels a documented deviation from the kernel
	// that the case asserts explicitly.
	Deviation string `json:"deviation,omitempty"`
	// Notes record kernel behaviour that contradicts the semantics
	// reference (informational; they do not fail the case).
	Notes []string `json:"notes,omitempty"`
}

// Summary is one line: "N passed, N failed" (or why the run skipped).
func (r *Report) Summary() string {
	if r.Skipped {
		return "conformance skipped: " + r.SkipReason
	}
	return fmt.Sprintf("%d passed, %d failed", r.Passed, r.Failed)
}

// FailedCases returns the cases that failed.
func (r *Report) FailedCases() []CaseResult {
	var out []CaseResult
	for _, c := range r.Cases {
		if !c.Pass {
			out = append(out, c)
		}
	}
	return out
}

// String prints the failing cases with their diffs, then the summary.
func (r *Report) String() string {
	var b strings.Builder
	for _, c := range r.Cases {
		if c.Pass {
			continue
		}
		fmt.Fprintf(&b, "FAIL %s\n", c.Name)
		for _, d := range c.Diffs {
			fmt.Fprintf(&b, "    %s\n", d)
		}
	}
	fmt.Fprintf(&b, "%s (kernel %s, %d CPUs, seed %d)\n", r.Summary(), r.Kernel, r.NumCPU, r.Seed)
	return b.String()
}
