package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/ringbuf"
)

// `ringbuf consume` in its own process sleeps until records come, prints
// them (hex, or JSON lines with -j) and stops after --count; `ringbuf
// output` writes them; `map create` takes a ring buffer without key or
// value sizes.
func TestRingbufCommands(t *testing.T) {
	region := filepath.Join(t.TempDir(), "rb")
	must := func(args ...string) result {
		t.Helper()
		r := cli(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		return r
	}
	must("region", "create", region, "--size-limit", "64M", "--cpus", "2")
	ev := region + ":events"
	if r := must("map", "create", ev, "type", "ringbuf", "entries", "65536"); !strings.Contains(r.stdout, "events: ringbuf") {
		t.Errorf("create printed %q", r.stdout)
	}
	if r := cli(t, "map", "create", region+":bad", "type", "ringbuf", "entries", "12288"); r.code != 1 || !strings.Contains(r.stderr, "invalid argument") {
		t.Errorf("ringbuf of 12288 bytes: %+v", r)
	}

	for _, j := range []bool{false, true} {
		args := []string{"ringbuf", "consume", ev, "--count", "2"}
		if j {
			args = append([]string{"-j"}, args...)
		}
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
		cmd.Env = append(os.Environ(), "USERBPF_CLI_TEST=1", "GORACE=atexit_sleep_ms=0")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitAsleep(t, region, "events")
		if r := cli(t, "ringbuf", "consume", ev); r.code != 1 || !strings.Contains(r.stderr, "busy") {
			t.Errorf("second consumer: %+v", r)
		}
		must("ringbuf", "output", ev, "data", "1", "2", "0xff", "no_wakeup")
		must("ringbuf", "output", ev, "data", "hex", "dead", "beef", "force_wakeup")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("consume: %v\n%s", err, errb.String())
		}
		if !j {
			if out.String() != "01 02 ff\nde ad be ef\n" {
				t.Errorf("consume printed %q", out.String())
			}
		} else {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var rec recordJSON
			if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &rec) != nil || rec.Size != 4 ||
				strings.Join(rec.Data, " ") != "0xde 0xad 0xbe 0xef" {
				t.Errorf("consume -j printed %q", out.String())
			}
		}
	}
	must("ringbuf", "output", ev, "data", "hex", "0102")
	r := must("-j", "ringbuf", "show", ev)
	var st ringJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Avail != 16 || st.Size != 65536 || st.Takeovers != 0 {
		t.Errorf("show -j: %q %v", r.stdout, err)
	}
	if r := must("ringbuf", "consume", ev, "--count", "1"); r.stdout != "01 02\n" {
		t.Errorf("consume printed %q", r.stdout)
	}

	big := []string{"ringbuf", "output", ev, "data", "hex"}
	for range 17 {
		big = append(big, strings.Repeat("00", 4096))
	}
	if r := cli(t, big...); r.code != 1 || !strings.Contains(r.stderr, "larger than the ring buffer") {
		t.Errorf("output too big: %+v", r)
	}
	if r := cli(t, "ringbuf", "output", ev, "1", "2"); r.code != 2 {
		t.Errorf("output without data: %+v", r)
	}
	if r := cli(t, "ringbuf", "consume", ev, "--count", "-1"); r.code != 2 {
		t.Errorf("negative count: %+v", r)
	}

	// A user ring buffer: outputs from here, consume drains and ends.
	u := region + ":u"
	must("map", "create", u, "type", "user_ringbuf", "key", "0", "value", "0", "entries", "4096")
	must("ringbuf", "output", u, "data", "7")
	must("ringbuf", "output", u, "data", "8", "9")
	if r := must("ringbuf", "consume", u); r.stdout != "07\n08 09\n" {
		t.Errorf("drain printed %q", r.stdout)
	}
	if r := must("ringbuf", "consume", u); r.stdout != "" {
		t.Errorf("second drain printed %q", r.stdout)
	}
}

// waitAsleep waits until a consumer of the ring sleeps (state the CLI
// process makes visible in the region).
func waitAsleep(t *testing.T, region, name string) {
	t.Helper()
	r, err := userbpf.OpenRegion(region)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, err := r.OpenMap(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ringbuf.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	deadline := time.Now().Add(time.Minute)
	for g.Stats().Sleepers == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the consumer never went to sleep")
		}
		time.Sleep(time.Millisecond)
	}
}
