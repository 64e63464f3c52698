package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestMapCommands(t *testing.T) {
	region := filepath.Join(t.TempDir(), "maps")
	must := func(args ...string) result {
		t.Helper()
		r := cli(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		return r
	}
	must("region", "create", region, "--size-limit", "64M", "--cpus", "2")
	target := region + ":counts"
	must("map", "create", target, "type", "hash", "key", "4", "value", "8", "entries", "16", "flags", "zero_seed")
	must("map", "update", target, "key", "1", "0", "0", "0", "value", "42", "0", "0", "0", "0", "0", "0", "0")
	must("map", "update", target, "key", "hex", "02", "00", "00", "00", "value", "hex", "0700000000000000", "noexist")

	if r := cli(t, "map", "update", target, "key", "1", "0", "0", "0", "value", "1", "0", "0", "0", "0", "0", "0", "0", "noexist"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("noexist on a present key: %+v", r)
	}
	if r := must("map", "lookup", target, "key", "1", "0", "0", "0"); r.stdout != "key: 01 00 00 00  value: 2a 00 00 00 00 00 00 00\n" {
		t.Errorf("lookup printed %q", r.stdout)
	}
	r := must("-j", "map", "dump", target)
	var dump []elemJSON
	if err := json.Unmarshal([]byte(r.stdout), &dump); err != nil || len(dump) != 2 {
		t.Fatalf("dump -j: %q (%v)", r.stdout, err)
	}
	if r := must("map", "dump", target); !strings.HasSuffix(r.stdout, "Found 2 elements\n") {
		t.Errorf("dump: %q", r.stdout)
	}
	if r := cli(t, "map", "lookup", target, "key", "9", "0", "0", "0"); r.code != 1 || !strings.Contains(r.stderr, `map "counts": key does not exist`) {
		t.Errorf("lookup of a missing key: %+v", r)
	}
	if r := must("-j", "map", "getnext", target); !strings.Contains(r.stdout, "next_key") {
		t.Errorf("getnext -j: %q", r.stdout)
	}
	must("map", "delete", target, "key", "2", "0", "0", "0")
	must("map", "freeze", target)
	if r := cli(t, "map", "delete", target, "key", "1", "0", "0", "0"); r.code != 1 || !strings.Contains(r.stderr, "frozen") {
		t.Errorf("delete on a frozen map: %+v", r)
	}

	// Per-CPU: one value given, stored on every CPU, dumped per CPU.
	must("map", "create", region+":pc", "type", "percpu_array", "key", "4", "value", "4", "entries", "2")
	must("map", "update", region+":pc", "key", "0", "0", "0", "0", "value", "5", "0", "0", "0")
	if r := must("map", "lookup", region+":pc", "key", "0", "0", "0", "0"); !strings.Contains(r.stdout, "value (CPU 01): 05 00 00 00") {
		t.Errorf("per-CPU lookup: %q", r.stdout)
	}

	// A lock in an LRU hash: refused by the kernel, ours on purpose.
	must("map", "create", region+":lk", "type", "lru_hash", "key", "4", "value", "16", "entries", "8", "lock-offset", "0")
	must("map", "update", region+":lk", "key", "1", "0", "0", "0", "value", "hex", "00000000000000000100000000000000", "lock")
	var shown []mapJSON
	if r := must("-j", "map", "list", region); json.Unmarshal([]byte(r.stdout), &shown) != nil || len(shown) != 3 {
		t.Errorf("map list -j: %q", r.stdout)
	}
}

func TestMapCommandErrors(t *testing.T) {
	region := filepath.Join(t.TempDir(), "maps")
	if r := cli(t, "region", "create", region, "--size-limit", "64M"); r.code != 0 {
		t.Fatal(r)
	}
	target := region + ":m"
	if r := cli(t, "map", "create", target, "type", "hash", "key", "4", "value", "8", "entries", "4"); r.code != 0 {
		t.Fatal(r)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"map", "create", region + ":x", "type", "nosuch", "key", "4", "value", "8", "entries", "4"}, 2, "type"},
		{[]string{"map", "create", region + ":x", "type", "hash", "key", "4", "value", "8"}, 2, `"entries" is required`},
		{[]string{"map", "create", region + ":x", "type", "lru_hash", "key", "4", "value", "8", "entries", "4", "flags", "no_prealloc"}, 1, "preallocated"},
		{[]string{"map", "create", region + ":x", "type", "array", "key", "8", "value", "8", "entries", "4"}, 1, "invalid argument"},
		{[]string{"map", "create", target, "type", "hash", "key", "4", "value", "8", "entries", "4"}, 1, "already exists"},
		{[]string{"map", "lookup", target, "key", "1", "0", "0"}, 2, "got 3 bytes, the map needs 4"},
		{[]string{"map", "lookup", target, "key", "1", "0", "0", "300"}, 2, `"300" is not a byte`},
		{[]string{"map", "lookup", region + ":nosuch", "key", "1", "0", "0", "0"}, 1, `open map "nosuch": does not exist: region`},
		{[]string{"map", "lookup", "nocolon", "key", "1", "0", "0", "0"}, 2, "want REGION:NAME"},
		{[]string{"map", "update", target, "key", "1", "0", "0", "0", "value", "1", "0", "0", "0", "0", "0", "0", "0", "lock"}, 1, "no bpf_spin_lock"},
		{[]string{"map", "update", target, "key", "1", "0", "0", "0", "value", "1", "0", "0", "0", "0", "0", "0", "0", "sometimes"}, 2, `"sometimes" is not a byte`},
	}
	for _, c := range cases {
		r := cli(t, c.args...)
		if r.code != c.code || !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
}
