package verifier_test

import (
	"path/filepath"
	"sort"
	"testing"

	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/verifier"
)

// BenchmarkVerify verifies every testdata program (one sub-benchmark
// each): the issue asks for at most 50 ms per program.
func BenchmarkVerify(b *testing.B) {
	objs, _ := filepath.Glob("../testdata/verifier/*.o")
	objs = append(kernelValidObjects(b)[:0:0], append(kernelValidObjects(b), objs...)...)
	seen := map[string]bool{}
	for _, obj := range objs {
		if seen[obj] {
			continue
		}
		seen[obj] = true
		spec, err := loader.ParseFile(obj, nil)
		if err != nil {
			b.Fatal(err)
		}
		names := make([]string, 0, len(spec.Programs))
		for n := range spec.Programs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p, err := spec.VerifierProgram(n)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(filepath.Base(obj)+":"+n, func(b *testing.B) {
				for b.Loop() {
					verifier.Verify(p, nil)
				}
			})
		}
	}
}
