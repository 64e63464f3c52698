package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs `userbpf demo` end to end: its worker processes are this
// test binary too (re-executed with the environment that makes it the CLI).
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	r := cli(t, "demo", "--seconds", "1", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("demo exited %d:\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "all checks passed") || strings.Contains(r.stdout, "WRONG") {
		t.Fatalf("demo report:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "program runs") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("demo left %v behind", left)
	}
}

func TestDemoJSON(t *testing.T) {
	dir := t.TempDir()
	r := cli(t, "-j", "demo", "--seconds", "0.5", "--workers", "1", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("demo -j exited %d: %+v", r.code, r)
	}
	var rep demoReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("demo -j printed %q: %v", r.stdout, err)
	}
	if !rep.AllChecksPassed || len(rep.Checks) == 0 || rep.ProgramRuns == 0 || rep.Workers != 1 {
		t.Errorf("demo -j: %+v", rep)
	}
	for _, c := range rep.Checks {
		if !c.OK || c.Expected != c.Observed {
			t.Errorf("check %+v", c)
		}
	}
	if rep.Flips == 0 || rep.SyncMedianNs <= 0 || rep.EventsReceived == 0 {
		t.Errorf("demo -j did not flip, synchronize or receive events: %+v", rep)
	}
	if _, err := os.Stat(rep.Region); !os.IsNotExist(err) {
		t.Errorf("region %s still there: %v", rep.Region, err)
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{{"demo", "--workers", "0"}, {"demo", "--seconds", "-1"}, {"demo", "extra"}} {
		if r := cli(t, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2: %+v", args, r.code, r)
		}
	}
}
