package conformance

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// TestConformance runs every case against the kernel and fails once per
// failing case. USERBPF_CONFORMANCE_SEED replays a seed,
// USERBPF_CONFORMANCE_MATCH selects cases by name and
// USERBPF_CONFORMANCE_OPS sets the length of the random sequences.
func TestConformance(t *testing.T) {
	opts := Options{Dir: t.TempDir(), Match: os.Getenv("USERBPF_CONFORMANCE_MATCH")}
	if s := os.Getenv("USERBPF_CONFORMANCE_SEED"); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("USERBPF_CONFORMANCE_SEED=%q: %v", s, err)
		}
		opts.Seed = seed
	}
	if testing.Short() {
		opts.RandomOps = 500
	}
	if s := os.Getenv("USERBPF_CONFORMANCE_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("USERBPF_CONFORMANCE_OPS=%q: %v", s, err)
		}
		opts.RandomOps = n
	}
	rep := Run(opts)
	if rep.Skipped {
		t.Skipf("differential conformance against the kernel skipped: %s", rep.SkipReason)
	}
	t.Logf("kernel %s, %d CPUs, seed %d (replay with USERBPF_CONFORMANCE_SEED=%d), %s in %v",
		rep.Kernel, rep.NumCPU, rep.Seed, rep.Seed, rep.Summary(), rep.Duration)
	for _, c := range rep.Cases {
		for _, n := range c.Notes {
			t.Logf("note: %s: kernel differs from the semantics reference: %s", c.Name, n)
		}
		if c.Pass {
			continue
		}
		msg := ""
		for _, d := range c.Diffs {
			msg += "\n    " + d
		}
		t.Errorf("%s:%s", c.Name, msg)
	}
	if len(rep.Cases) == 0 && opts.Match == "" {
		t.Error("no case ran")
	}
}

func TestReportJSON(t *testing.T) {
	rep := Report{Kernel: "x", Passed: 1, Cases: []CaseResult{{Name: "a", Pass: true}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Cases[0].Name != "a" || back.Summary() != "1 passed, 0 failed" {
		t.Fatalf("round trip: %s, %v", b, err)
	}
	skipped := Report{Skipped: true, SkipReason: "no bpf"}
	if got := skipped.Summary(); got != "conformance skipped: no bpf" {
		t.Fatalf("Summary = %q", got)
	}
}

func TestSkipWithoutBPF(t *testing.T) {
	old := probe
	probe = func() string { return "bpf(2) BPF_MAP_CREATE is not permitted (EPERM(1))" }
	defer func() { probe = old }()
	rep := Run(Options{Dir: t.TempDir()})
	if !rep.Skipped || len(rep.Cases) != 0 || rep.Summary() != "conformance skipped: bpf(2) BPF_MAP_CREATE is not permitted (EPERM(1))" {
		t.Fatalf("got %+v", rep)
	}
}
