package programs_test

import (
	"errors"
	"testing"

	"github.com/userbpf/userbpf/programs"
)

// BenchmarkAbort is the cost of an aborted run (run up to the fault, stop,
// release the lock, count the abort in the region, build the error)
// against a run of the same shape that completes (run/inc: lookup, lock,
// increment, unlock). disabled is the refusal of a disabled program.
func BenchmarkAbort(b *testing.B) {
	installPanicHelper()
	defer programs.SetTestHelpers(nil)
	_, r := newAbortRegion(b, 1)
	open := func(name string) *programs.Program {
		p, err := r.Program(name)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	ctx := skb(0)()
	b.Run("run/inc", func(b *testing.B) {
		p := open("inc")
		for b.Loop() {
			if _, err := p.Run(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, name := range []string{"oob_store", "double_lock", "deep", "helper_panic"} {
		b.Run("abort/"+name, func(b *testing.B) {
			p := open(name)
			for b.Loop() {
				if _, err := p.Run(ctx); !errors.Is(err, programs.ErrAborted) {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("disabled", func(b *testing.B) {
		p := open("oob_store")
		p.SetAbortLimit(1)
		p.Run(ctx)
		for b.Loop() {
			if _, err := p.Run(ctx); !errors.Is(err, programs.ErrDisabled) {
				b.Fatal(err)
			}
		}
	})
}
