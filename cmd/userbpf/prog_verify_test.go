package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// prog load prints the verifier's one-line error for a rejected program
// and exits non-zero; --log adds the full trace.
func TestProgLoadVerifierError(t *testing.T) {
	region := filepath.Join(t.TempDir(), "p")
	obj := filepath.Join("..", "..", "testdata", "verifier", "bad_helper_locked.o")
	if r := cli(t, "region", "create", region, "--size-limit", "64M"); r.code != 0 {
		t.Fatalf("region create: %+v", r)
	}
	r := cli(t, "prog", "load", obj, region)
	want := `bad_helper_locked.c:13 "c->last = bpf_ktime_get_ns();`
	if r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "bpf_ktime_get_ns while the bpf_spin_lock") {
		t.Fatalf("prog load of a bad program: %+v", r)
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 1 {
		t.Errorf("error is %d lines, want a short one:\n%s", n+1, r.stderr)
	}
	r = cli(t, "prog", "load", "--log", obj, region)
	if r.code == 0 || !strings.Contains(r.stderr, "Call FnSpinLock") || !strings.Contains(r.stderr, "locked(insn 12)") {
		t.Fatalf("prog load --log: %+v", r)
	}
	if r := cli(t, "prog", "show", region); r.code != 0 || strings.Contains(r.stdout, "bad_helper_locked") {
		t.Errorf("a rejected program is listed: %+v", r)
	}
}
