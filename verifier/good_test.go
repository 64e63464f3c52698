package verifier_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/verifier"
)

// kernelValidObjects are the objects of the repository whose programs
// must pass: every testdata object but abort_bad.o (the abort tests'
// programs the verifier refuses, run around it), the example and the
// known-good verifier programs.
func kernelValidObjects(t testing.TB) []string {
	all, err := filepath.Glob("../testdata/*.o")
	if err != nil {
		t.Fatal(err)
	}
	var objs []string
	for _, o := range all {
		if filepath.Base(o) != "abort_bad.o" {
			objs = append(objs, o)
		}
	}
	objs = append(objs, "../examples/demo.o")
	good, _ := filepath.Glob("../testdata/verifier/good_*.o")
	return append(objs, good...)
}

func TestKernelValidProgramsPass(t *testing.T) {
	for _, obj := range kernelValidObjects(t) {
		spec, err := loader.ParseFile(obj, nil)
		if err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		for name := range spec.Programs {
			p, err := spec.VerifierProgram(name)
			if err != nil {
				t.Fatalf("%s: %v", obj, err)
			}
			if err := verifier.Verify(p, nil); err != nil {
				t.Errorf("%s: %s: %v", filepath.Base(obj), name, err)
				if testing.Verbose() {
					verifier.Verify(p, &verifier.Options{Log: os.Stderr})
				}
			}
		}
	}
}
