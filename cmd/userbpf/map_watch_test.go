package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/userbpf/userbpf/internal/futex/futextest"
)

// `map watch` in one process prints the changes `map update`/`delete`
// make in others, sleeping in between.
func TestMapWatch(t *testing.T) {
	region := filepath.Join(t.TempDir(), "w")
	for _, args := range [][]string{
		{"region", "create", region, "--size-limit", "64M"},
		{"map", "create", region + ":m", "type", "hash", "key", "4", "value", "4", "entries", "8"},
	} {
		if r := cli(t, args...); r.code != 0 {
			t.Fatal(r)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "map", "watch", region+":m", "--values", "--count", "2")
	cmd.Env = append(os.Environ(), "USERBPF_CLI_TEST=1", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	futextest.Await(t, cmd.Process.Pid, 0, 1) // the watcher is asleep on the map's event log
	if r := cli(t, "map", "update", region+":m", "key", "1", "0", "0", "0", "value", "7", "0", "0", "0"); r.code != 0 {
		t.Fatal(r)
	}
	if r := cli(t, "map", "delete", region+":m", "key", "1", "0", "0", "0"); r.code != 0 {
		t.Fatal(r)
	}
	sc := bufio.NewScanner(out)
	for _, want := range []string{"update key: 01 00 00 00  value: 07 00 00 00", "delete key: 01 00 00 00"} {
		if !sc.Scan() || sc.Text() != want {
			t.Fatalf("watch printed %q, want %q", sc.Text(), want)
		}
	}
}
