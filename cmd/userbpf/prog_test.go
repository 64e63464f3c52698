package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// Load a clang-built object, run a program, and see its maps dumped with
// the types its BTF declares ("formatted", as bpftool prints them).
func TestProgLoadRunAndFormattedDump(t *testing.T) {
	region := filepath.Join(t.TempDir(), "p")
	obj := filepath.Join("..", "..", "testdata", "spinlock_lru.o")
	for _, args := range [][]string{
		{"region", "create", region, "--size-limit", "128M"},
		{"prog", "load", obj, region},
		{"prog", "run", region + ":count", "repeat", "5"},
	} {
		if r := cli(t, args...); r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	if r := cli(t, "prog", "run", region+":count"); r.code != 0 || !strings.HasPrefix(r.stdout, "Return value: 33, duration (average): ") {
		t.Errorf("prog run: %+v", r)
	}
	r := cli(t, "-j", "map", "dump", region+":counters")
	var elems []elemJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &elems) != nil || len(elems) != 4 {
		t.Fatalf("map dump -j: %+v", r)
	}
	var f struct {
		Key   int `json:"key"`
		Value struct {
			Packets uint64 `json:"packets"`
			Bytes   uint64 `json:"bytes"`
		} `json:"value"`
	}
	total := uint64(0)
	for _, e := range elems {
		if err := json.Unmarshal(e.Formatted, &f); err != nil {
			t.Fatalf("formatted %s: %v", e.Formatted, err)
		}
		total += f.Value.Packets
		if f.Value.Bytes != f.Value.Packets*(uint64(f.Key)*100+1) {
			t.Errorf("key %d: packets %d bytes %d", f.Key, f.Value.Packets, f.Value.Bytes)
		}
	}
	if total != 6 {
		t.Errorf("packets over all keys %d, want 6 runs", total)
	}
	if r := cli(t, "prog", "dump", region+":count"); r.code != 0 || !strings.Contains(r.stdout, "Call") {
		t.Errorf("prog dump: %+v", r)
	}
	if r := cli(t, "prog", "run", region+":nosuch"); r.code != 1 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("run of a missing program: %+v", r)
	}
}
