package verifier_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/verifier"
)

// objects are the kernel-valid objects of the repository: every program
// in them must pass.
func kernelValidObjects(t testing.TB) []string {
	objs, err := filepath.Glob("../testdata/*.o")
	if err != nil {
		t.Fatal(err)
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
