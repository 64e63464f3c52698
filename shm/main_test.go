package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// newRegion creates a region in a fresh temporary directory and closes it
// when the test ends.
func newRegion(tb testing.TB, o Options) (*Region, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "region")
	r, err := Create(path, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r, path
}

// openRegion attaches to path and detaches when the test ends.
func openRegion(tb testing.TB, path string) *Region {
	tb.Helper()
	r, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// mustCheck runs Check and fails the test if it reports a problem.
func mustCheck(tb testing.TB, r *Region) Report {
	tb.Helper()
	rep := r.Check()
	for _, p := range rep.Problems {
		tb.Errorf("Check: %s", p)
	}
	if len(rep.Problems) > 0 {
		tb.FailNow()
	}
	return rep
}

// wantErr fails unless err matches every target under errors.Is and its
// message mentions each of the strings in mention.
func wantErr(tb testing.TB, err error, target error, mention ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want %v", target)
	}
	if !errors.Is(err, target) {
		tb.Fatalf("got error %q, want one matching %q", err, target)
	}
	for _, s := range mention {
		if !strings.Contains(err.Error(), s) {
			tb.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// childOpen is the common start of a child: it attaches to the region named
// by args[0] and announces its slot and tag.
func childOpen(args []string) (*Region, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("want a region path, got %q", args)
	}
	r, err := Open(args[0])
	if err != nil {
		return nil, err
	}
	return r, nil
}

// parseU64 parses a decimal argument.
func parseU64(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad number %q: %v\n", s, err)
		os.Exit(2)
	}
	return v
}
