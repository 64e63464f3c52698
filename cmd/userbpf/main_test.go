package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
)

// The test binary doubles as the CLI: with USERBPF_CLI_TEST set it runs
// main with the arguments after "--", so tests drive the real command line
// in a real process, exit code included.
func TestMain(m *testing.M) {
	if os.Getenv("USERBPF_CLI_TEST") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"userbpf"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	proctest.Main(m)
}

type result struct {
	stdout, stderr string
	code           int
}

func cli(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "USERBPF_CLI_TEST=1", "GORACE=atexit_sleep_ms=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func TestRegionLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r1")
	if r := cli(t, "region", "create", path, "--size-limit", "64M", "--cpus", "3", "--mode", "0640"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	r := cli(t, "-j", "region", "show", path)
	if r.code != 0 {
		t.Fatalf("show: %+v", r)
	}
	var got regionJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("show -j printed %q: %v", r.stdout, err)
	}
	if got.CPUs != 3 || got.SizeLimit != 64<<20 || got.Path != path || len(got.Processes) != 0 {
		t.Errorf("show -j: %+v", got)
	}
	if _, ok := got.Counters["spin_lock_recoveries"]; !ok {
		t.Errorf("show -j has no spin_lock_recoveries counter: %v", got.Counters)
	}
	if r := cli(t, "region", "show", path); r.code != 0 || !strings.Contains(r.stdout, "virtual CPUs 3") {
		t.Errorf("show: %+v", r)
	}
	if r := cli(t, "region", "create", path); r.code != 1 || !strings.Contains(r.stderr, "Error: ") || !strings.Contains(r.stderr, "exists") {
		t.Errorf("create over an existing region: %+v", r)
	}
	if r := cli(t, "region", "rm", path); r.code != 0 {
		t.Fatalf("rm: %+v", r)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("region file still there after rm: %v", err)
	}
}

func TestRegionRmRefusesLiveRegion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy")
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if res := cli(t, "region", "rm", path); res.code != 1 || !strings.Contains(res.stderr, "in use") {
		t.Fatalf("rm of a live region: %+v", res)
	}
	if res := cli(t, "region", "rm", "--force", path); res.code != 0 {
		t.Fatalf("rm --force: %+v", res)
	}
}

func TestErrorsNameTheFileAndTheProblem(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a region "), 1000), 0o600)
	notRegionFile := filepath.Join(dir, "text")
	os.WriteFile(notRegionFile, []byte("hello"), 0o600)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"region", "show", garbage}, 1, garbage + ": not a userbpf region"},
		{[]string{"region", "rm", notRegionFile}, 1, "not a userbpf region"},
		{[]string{"region", "show", filepath.Join(dir, "missing")}, 1, "does not exist"},
		{[]string{"region", "create", filepath.Join(dir, "x"), "--size-limit", "lots"}, 2, `size "lots"`},
		{[]string{"region", "create", filepath.Join(dir, "x"), "--mode", "999"}, 2, `mode "999"`},
		{[]string{"region", "create", filepath.Join(dir, "x"), "--cpus", "5000"}, 1, "5000 virtual CPUs"},
		{[]string{"region", "create", filepath.Join(dir, "x"), "--size-limit", "4K"}, 1, "no room for a heap"},
		{[]string{"region", "frobnicate"}, 2, "unknown command"},
		{[]string{"bench", "nosuch"}, 2, `unknown bench suite "nosuch"`},
	}
	for _, c := range cases {
		r := cli(t, c.args...)
		if r.code != c.code || !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(notRegionFile); err != nil {
		t.Errorf("rm removed a file that is not a region: %v", err)
	}
	r := cli(t, "-j", "region", "show", garbage)
	var e map[string]string
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &e) != nil || !strings.Contains(e["error"], "not a userbpf region") {
		t.Errorf("-j error: %+v", r)
	}
}

func TestVersion(t *testing.T) {
	if r := cli(t, "version"); r.code != 0 || !strings.Contains(r.stdout, "region format 1") {
		t.Errorf("version: %+v", r)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "512M", "8G", "1T", "4KiB", "", "0", "-1", "99999999999999999999T"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseSize(s)
		if err == nil && v == 0 {
			t.Errorf("parseSize(%q) = 0 without an error", s)
		}
	})
}
