package verifier_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbpf/userbpf/loader/loadertest"
)

// kernelLoad loads an object into the running kernel with bpftool (libbpf:
// cilium/ebpf v0.22 loses the graph roots' contains: tags of global data,
// so the kernel would refuse the maps rather than judge the programs). It
// returns nil when the kernel's verifier accepts every program, or its
// log.
func kernelLoad(t *testing.T, obj string) error {
	t.Helper()
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("userbpf-verifier-%d-%s", os.Getpid(), strings.TrimSuffix(filepath.Base(obj), ".o")))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Skipf("no bpffs to pin programs in: %v", err)
	}
	defer os.RemoveAll(dir)
	out, err := exec.Command("bpftool", "prog", "loadall", obj, dir).CombinedOutput()
	if err != nil {
		if !strings.Contains(string(out), "failed to load") && !strings.Contains(string(out), "load program") &&
			!strings.Contains(string(out), "BPF program load failed") {
			t.Fatalf("bpftool prog loadall %s failed before the verifier: %v\n%s", obj, err, out)
		}
		return fmt.Errorf("%s", lastVerifierLine(string(out)))
	}
	return nil
}

// lastVerifierLine picks the verifier's verdict from a libbpf log: the
// line before "processed N insns" (or the log's end marker).
func lastVerifierLine(log string) string {
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if (strings.HasPrefix(l, "processed ") || strings.HasPrefix(l, "-- END")) && i > 0 {
			return strings.TrimSpace(lines[i-1])
		}
	}
	return strings.TrimSpace(log)
}

// TestKernelAgrees loads every known-good and known-bad program into the
// running kernel: its verifier must accept the good ones and reject the
// bad ones, so our verdicts are the kernel's. A bad program whose source
// says "KERNEL: accepts" is one where we are deliberately stricter than a
// privileged kernel loader (docs/semantics.md, Verifier).
func TestKernelAgrees(t *testing.T) {
	if err := loadertest.KernelAvailable(); err != nil {
		t.Skipf("no kernel to compare with: %v", err)
	}
	if _, err := exec.LookPath("bpftool"); err != nil {
		t.Skip("no bpftool to load objects with libbpf")
	}
	objs, _ := filepath.Glob("../testdata/verifier/*.o")
	for _, obj := range objs {
		name := strings.TrimSuffix(filepath.Base(obj), ".o")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(strings.TrimSuffix(obj, ".o") + ".c")
			if err != nil {
				t.Fatal(err)
			}
			err = kernelLoad(t, obj)
			good := strings.HasPrefix(name, "good_") || strings.Contains(string(src), "KERNEL: accepts")
			switch {
			case good && err != nil:
				t.Errorf("the kernel rejects it: %v", err)
			case !good && err == nil:
				t.Errorf("the kernel accepts a known-bad program")
			case err != nil && strings.Contains(err.Error(), "no valid bpf_spin_lock"):
				t.Errorf("the kernel rejects it for its map's BTF (a type the program never names?), not for the rule it breaks: %v", err)
			case err != nil:
				t.Logf("kernel: %v", err)
			}
		})
	}
}
