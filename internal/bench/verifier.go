package bench

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/verifier"
)

// Verifier measures static verification: the median time to verify each
// program of testdata (the kernel-valid objects, examples/demo.o and the
// verifier's known-good and known-bad programs), reporting the slowest
// and the mean.
func Verifier(env *Env) []Result {
	env.say("verifier")
	var objs []string
	for _, g := range []string{"testdata/*.o", "testdata/verifier/*.o", "examples/*.o"} {
		m, _ := filepath.Glob(g)
		objs = append(objs, m...)
	}
	if len(objs) == 0 {
		return []Result{{Suite: "vm", Name: "verify_max_ms", Note: "no testdata objects: run from the repository's root"}}
	}
	type prog struct {
		name string
		p    *verifier.Program
	}
	var progs []prog
	for _, obj := range objs {
		spec, err := loader.ParseFile(obj, nil)
		if err != nil {
			continue
		}
		names := make([]string, 0, len(spec.Programs))
		for n := range spec.Programs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if p, err := spec.VerifierProgram(n); err == nil {
				progs = append(progs, prog{filepath.Base(obj) + ":" + n, p})
			}
		}
	}
	worst, sum := 0.0, 0.0
	worstName := ""
	for _, p := range progs {
		ns := perOp(3, func(n int) {
			for range n {
				verifier.Verify(p.p, nil)
			}
		})
		sum += ns
		if ns > worst {
			worst, worstName = ns, p.name
		}
	}
	return []Result{
		{Suite: "vm", Name: "verify_max_ms", Unit: "ms", Value: worst / 1e6, Target: "<= 50 ms per program",
			Note: fmt.Sprintf("slowest of %d testdata programs: %s", len(progs), worstName)},
		{Suite: "vm", Name: "verify_mean_ms", Unit: "ms", Value: sum / float64(len(progs)) / 1e6},
	}
}
