package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
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

// A program that faults: prog run reports the abort (program, instruction,
// kind), prog show counts it, abort-limit disables the program and prog
// enable brings it back.
func TestProgAbortLimitAndEnable(t *testing.T) {
	dir := t.TempDir()
	region := filepath.Join(dir, "p")
	obj := filepath.Join("..", "..", "testdata", "abort_ok.o")
	// packet_byte reads data + 7 where the context says data is 0x1000.
	ctx := make([]byte, 192)
	binary.NativeEndian.PutUint32(ctx[8:], 7)
	binary.NativeEndian.PutUint32(ctx[76:], 0x1000)
	binary.NativeEndian.PutUint32(ctx[80:], 0x2000)
	ctxFile := filepath.Join(dir, "ctx")
	if err := os.WriteFile(ctxFile, ctx, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"region", "create", region, "--size-limit", "64M"},
		{"prog", "load", obj, region, "abort-limit", "5"},
		{"prog", "set", region + ":packet_byte", "abort-limit", "2"},
	} {
		if r := cli(t, args...); r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	run := func() result { return cli(t, "prog", "run", region+":packet_byte", "ctx_in", ctxFile) }
	for range 2 {
		if r := run(); r.code != 1 || !strings.Contains(r.stderr, `"packet_byte"`) || !strings.Contains(r.stderr, "insn 23") ||
			!strings.Contains(r.stderr, "memory access violation") || !strings.Contains(r.stderr, "bpf_spin_lock was released") {
			t.Fatalf("run of a faulting program: %+v", r)
		}
	}
	if r := run(); r.code != 1 || !strings.Contains(r.stderr, "disabled") {
		t.Fatalf("run of a disabled program: %+v", r)
	}
	if r := cli(t, "prog", "show", region); r.code != 0 ||
		!strings.Contains(r.stdout, "runs 2  faults 2  last fault memory at insn 23  abort-limit 2  DISABLED") ||
		!strings.Contains(r.stdout, "inc: type 3  insns 18  maps [locked]\n\truns 0  faults 0  abort-limit 5\n") {
		t.Fatalf("prog show: %+v", r)
	}
	var progs []progJSON
	if r := cli(t, "-j", "prog", "show", region); r.code != 0 || json.Unmarshal([]byte(r.stdout), &progs) != nil {
		t.Fatalf("prog show -j: %+v", r)
	}
	for _, p := range progs {
		if p.Name != "packet_byte" {
			continue
		}
		if p.Runs != 2 || p.Faults != 2 || !p.Disabled || p.AbortLimit != 2 || p.LastFault == nil || *p.LastFault != (lastFaultJSON{"memory", 23}) {
			t.Errorf("prog show -j: %+v", p)
		}
	}
	if r := cli(t, "prog", "enable", region+":packet_byte"); r.code != 0 || !strings.Contains(r.stdout, "runs 2  faults 0  abort-limit 2\n") {
		t.Fatalf("prog enable: %+v", r)
	}
	if r := run(); r.code != 1 || strings.Contains(r.stderr, "disabled") || !strings.Contains(r.stderr, "insn 23") {
		t.Fatalf("run after enable: %+v", r)
	}
	// Without ctx_in a tc program gets a zeroed struct __sk_buff (192
	// bytes): data == data_end, so packet_byte returns 0 without reading.
	if r := cli(t, "prog", "run", region+":packet_byte"); r.code != 0 || !strings.Contains(r.stdout, "Return value: 0,") {
		t.Fatalf("run with the default context: %+v", r)
	}
	for _, args := range [][]string{
		{"prog", "set", region + ":packet_byte"},
		{"prog", "set", region + ":packet_byte", "abort-limit", "x"},
		{"prog", "set", region + ":packet_byte", "limit", "3"},
		{"prog", "enable", region + ":nosuch"},
		{"prog", "load", obj, region, "abort-limit"},
	} {
		if r := cli(t, args...); r.code == 0 || r.stderr == "" {
			t.Errorf("%v: %+v", args, r)
		}
	}
}
