package loadertest

import (
	"flag"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/kernel_results.json from the kernel's results")

// TestKernel loads every scenario's object into the real kernel, runs the
// program with BPF_PROG_TEST_RUN and compares the return values and map
// dumps with the stored results (-update rewrites them). It proves the
// objects are genuine and keeps the stored results honest.
func TestKernel(t *testing.T) {
	if err := KernelAvailable(); err != nil {
		t.Skipf("kernel test skipped: %v", err)
	}
	stored, err := LoadResults()
	if err != nil && !*update {
		t.Fatalf("stored results: %v (run with -update to create them)", err)
	}
	got := map[string]*Result{}
	for _, s := range Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			res, err := RunKernel(s)
			if err != nil {
				t.Fatal(err)
			}
			got[s.Name] = res
			// A second run must give the same: the results are deterministic.
			again, err := RunKernel(s)
			if err != nil {
				t.Fatal(err)
			}
			if ok, diff := again.Equal(res); !ok {
				t.Fatalf("not deterministic: %s", diff)
			}
			if *update {
				return
			}
			want, ok := stored[s.Name]
			if !ok {
				t.Fatalf("no stored result for %s (run with -update)", s.Name)
			}
			if ok, diff := res.Equal(want); !ok {
				t.Fatalf("kernel differs from %s: %s", ResultsFile, diff)
			}
		})
	}
	if *update && !t.Failed() {
		if err := SaveResults(got); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScenariosStored checks that every scenario has a stored result (so
// the differential test has something to compare with without bpf(2)).
func TestScenariosStored(t *testing.T) {
	stored, err := LoadResults()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Scenarios() {
		if _, ok := stored[s.Name]; !ok {
			t.Errorf("no stored result for %s", s.Name)
		}
	}
}
