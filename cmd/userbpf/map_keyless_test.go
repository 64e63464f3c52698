package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestMapQueueStackCommands(t *testing.T) {
	region := filepath.Join(t.TempDir(), "kl")
	must := func(args ...string) result {
		t.Helper()
		r := cli(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		return r
	}
	must("region", "create", region, "--size-limit", "64M", "--cpus", "2")
	q := region + ":jobs"
	// No "key" needed for a key-less type; "key 0" is accepted too.
	if r := must("map", "create", q, "type", "queue", "value", "2", "entries", "3"); !strings.Contains(r.stdout, "jobs: queue") {
		t.Errorf("create printed %q", r.stdout)
	}
	must("map", "create", region+":st", "type", "stack", "key", "0", "value", "1", "entries", "2")
	if r := cli(t, "map", "create", region+":bad", "type", "queue", "key", "4", "value", "2", "entries", "3"); r.code != 1 || !strings.Contains(r.stderr, "invalid argument") {
		t.Errorf("queue with key 4: %+v", r)
	}
	if r := cli(t, "map", "create", region+":nokey", "type", "hash", "value", "2", "entries", "3"); r.code != 2 || !strings.Contains(r.stderr, `"key" is required`) {
		t.Errorf("hash without key: %+v", r)
	}
	if r := cli(t, "map", "create", region+":bad", "type", "fifo", "value", "2", "entries", "3"); r.code != 2 || !strings.Contains(r.stderr, `type "fifo"`) {
		t.Errorf("unknown type: %+v", r)
	}

	for _, v := range []string{"1", "2", "3"} {
		must("map", "push", q, "value", v, "0")
	}
	if r := cli(t, "map", "push", q, "value", "4", "0"); r.code != 1 || !strings.Contains(r.stderr, "argument too big") {
		t.Errorf("push into a full queue: %+v", r)
	}
	must("map", "push", q, "value", "hex", "0400", "exist") // drops the oldest (1)
	if r := cli(t, "map", "push", q, "value", "4", "0", "noexist"); r.code != 2 {
		t.Errorf("push noexist: %+v", r)
	}
	if r := cli(t, "map", "push", q, "value", "4"); r.code != 2 || !strings.Contains(r.stderr, "got 1 bytes, the map needs 2") {
		t.Errorf("push of a short value: %+v", r)
	}
	if r := must("map", "dump", q); r.stdout != "value: 02 00\nvalue: 03 00\nvalue: 04 00\nFound 3 elements\n" {
		t.Errorf("dump printed %q", r.stdout)
	}
	if r := must("map", "peek", q); r.stdout != "value: 02 00\n" {
		t.Errorf("peek printed %q", r.stdout)
	}
	if r := must("-j", "map", "pop", q); strings.TrimSpace(r.stdout) != `{"value":["0x02","0x00"]}` {
		t.Errorf("pop -j printed %q", r.stdout)
	}
	var dump []valueJSON
	if r := must("-j", "map", "dump", q); json.Unmarshal([]byte(r.stdout), &dump) != nil || len(dump) != 2 || dump[0].Value[0] != "0x03" {
		t.Errorf("dump -j printed %q", r.stdout)
	}
	must("map", "pop", q)
	if r := must("map", "pop", q); r.stdout != "value: 04 00\n" {
		t.Errorf("last pop printed %q", r.stdout)
	}
	if r := cli(t, "map", "pop", q); r.code != 1 || !strings.Contains(r.stderr, "queue is empty") {
		t.Errorf("pop of an empty queue: %+v", r)
	}
	if r := must("map", "dump", q); r.stdout != "Found 0 elements\n" {
		t.Errorf("dump of an empty queue printed %q", r.stdout)
	}

	// A stack pops the newest first; dump shows that order too.
	must("map", "push", region+":st", "value", "7")
	must("map", "push", region+":st", "value", "8")
	if r := must("map", "dump", region+":st"); r.stdout != "value: 08\nvalue: 07\nFound 2 elements\n" {
		t.Errorf("stack dump printed %q", r.stdout)
	}
	if r := must("map", "pop", region+":st"); r.stdout != "value: 08\n" {
		t.Errorf("stack pop printed %q", r.stdout)
	}
	if r := cli(t, "map", "delete", region+":st", "key"); r.code != 1 || !strings.Contains(r.stderr, "invalid argument") {
		t.Errorf("delete on a stack: %+v", r)
	}
	must("map", "freeze", region+":st")
	if r := cli(t, "map", "push", region+":st", "value", "9"); r.code != 1 || !strings.Contains(r.stderr, "frozen") {
		t.Errorf("push onto a frozen stack: %+v", r)
	}
	if r := must("map", "peek", region+":st"); r.stdout != "value: 07\n" {
		t.Errorf("peek of a frozen stack printed %q", r.stdout)
	}
}

func TestMapBloomAndLPMCommands(t *testing.T) {
	region := filepath.Join(t.TempDir(), "bl")
	must := func(args ...string) result {
		t.Helper()
		r := cli(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		return r
	}
	must("region", "create", region, "--size-limit", "64M", "--cpus", "2")
	b := region + ":seen"
	must("map", "create", b, "type", "bloom_filter", "value", "4", "entries", "100", "extra", "3", "flags", "zero_seed")
	if r := cli(t, "map", "create", region+":x", "type", "bloom_filter", "value", "4", "entries", "100", "extra", "16"); r.code != 1 || !strings.Contains(r.stderr, "map_extra") {
		t.Errorf("bloom with extra 16: %+v", r)
	}
	if r := cli(t, "map", "create", region+":x", "type", "hash", "key", "4", "value", "4", "entries", "1", "extra", "1"); r.code != 1 || !strings.Contains(r.stderr, "invalid argument") {
		t.Errorf("hash with extra 1: %+v", r)
	}
	must("map", "push", b, "value", "1", "2", "3", "4")
	if r := must("map", "peek", b, "value", "1", "2", "3", "4"); r.stdout != "value: 01 02 03 04  found\n" {
		t.Errorf("peek of a pushed value printed %q", r.stdout)
	}
	if r := must("-j", "map", "peek", b, "value", "1", "2", "3", "4"); !strings.Contains(r.stdout, `"found":true`) {
		t.Errorf("peek -j printed %q", r.stdout)
	}
	if r := cli(t, "map", "peek", b, "value", "9", "9", "9", "9"); r.code != 1 || !strings.Contains(r.stderr, "not in the bloom filter") {
		t.Errorf("peek of a value never pushed: %+v", r)
	}
	if r := cli(t, "map", "peek", b); r.code != 2 || !strings.Contains(r.stderr, "give the value to test") {
		t.Errorf("peek of a bloom filter without a value: %+v", r)
	}
	if r := cli(t, "map", "push", b, "value", "1", "2", "3", "4", "exist"); r.code != 1 || !strings.Contains(r.stderr, "invalid argument") {
		t.Errorf("bloom push exist: %+v", r)
	}
	if r := cli(t, "map", "dump", b); r.code != 1 || !strings.Contains(r.stderr, "no elements to list") {
		t.Errorf("dump of a bloom filter: %+v", r)
	}
	if r := cli(t, "map", "pop", b); r.code != 1 || !strings.Contains(r.stderr, "not supported") {
		t.Errorf("pop of a bloom filter: %+v", r)
	}

	// LPM trie: longest-prefix lookups and a post-order dump.
	l := region + ":routes"
	if r := cli(t, "map", "create", l, "type", "lpm_trie", "key", "8", "value", "1", "entries", "4"); r.code != 1 || !strings.Contains(r.stderr, "BPF_F_NO_PREALLOC") {
		t.Errorf("lpm_trie without no_prealloc: %+v", r)
	}
	must("map", "create", l, "type", "lpm_trie", "key", "8", "value", "1", "entries", "4", "flags", "no_prealloc")
	must("map", "update", l, "key", "8", "0", "0", "0", "10", "0", "0", "0", "value", "1")  // 10.0.0.0/8
	must("map", "update", l, "key", "24", "0", "0", "0", "10", "1", "2", "0", "value", "2") // 10.1.2.0/24
	if r := must("map", "lookup", l, "key", "32", "0", "0", "0", "10", "1", "2", "3"); !strings.HasSuffix(r.stdout, "value: 02\n") {
		t.Errorf("lookup of 10.1.2.3 printed %q", r.stdout)
	}
	if r := must("map", "lookup", l, "key", "32", "0", "0", "0", "10", "9", "9", "9"); !strings.HasSuffix(r.stdout, "value: 01\n") {
		t.Errorf("lookup of 10.9.9.9 printed %q", r.stdout)
	}
	if r := must("map", "dump", l); r.stdout != "key: 18 00 00 00 0a 01 02 00  value: 02\nkey: 08 00 00 00 0a 00 00 00  value: 01\nFound 2 elements\n" {
		t.Errorf("lpm dump printed %q", r.stdout)
	}
}
