package verifier_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/verifier"
)

// sentinels are the verifier's sentinel errors by name, as the bad
// programs' "BAD: <name>" marks name them.
var sentinels = map[string]error{
	"ErrInvalidInsn": verifier.ErrInvalidInsn, "ErrBadJump": verifier.ErrBadJump,
	"ErrUnreachable": verifier.ErrUnreachable, "ErrBadCall": verifier.ErrBadCall,
	"ErrCallDepth": verifier.ErrCallDepth, "ErrUninitReg": verifier.ErrUninitReg,
	"ErrUninitStack": verifier.ErrUninitStack, "ErrArg": verifier.ErrArg,
	"ErrNullCheck": verifier.ErrNullCheck, "ErrMemAccess": verifier.ErrMemAccess,
	"ErrLock": verifier.ErrLock, "ErrLockHeld": verifier.ErrLockHeld,
	"ErrSpecialField": verifier.ErrSpecialField, "ErrGraphLock": verifier.ErrGraphLock,
	"ErrRefLeak": verifier.ErrRefLeak, "ErrRefInvalid": verifier.ErrRefInvalid,
}

var badMark = regexp.MustCompile(`BAD: (Err[A-Za-z]+)`)

// badExpectation reads the line and sentinel a bad program's source marks.
func badExpectation(t *testing.T, src string) (line int, sentinel string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if m := badMark.FindStringSubmatch(l); m != nil && !strings.HasPrefix(strings.TrimSpace(l), "*") {
			return i + 1, m[1]
		}
	}
	t.Fatalf("%s has no BAD: mark", src)
	return 0, ""
}

// verifyObject verifies the single program of an object.
func verifyObject(t testing.TB, obj string, opts *verifier.Options) error {
	t.Helper()
	spec, err := loader.ParseFile(obj, nil)
	if err != nil {
		t.Fatalf("%s: %v", obj, err)
	}
	if len(spec.Programs) != 1 {
		t.Fatalf("%s: %d programs, want 1", obj, len(spec.Programs))
	}
	for name := range spec.Programs {
		p, err := spec.VerifierProgram(name)
		if err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		return verifier.Verify(p, opts)
	}
	return nil
}

// TestBadPrograms: every known-bad program is rejected with the sentinel
// and at the source line its BAD mark names.
func TestBadPrograms(t *testing.T) {
	objs, _ := filepath.Glob("../testdata/verifier/bad_*.o")
	if len(objs) < 10 {
		t.Fatalf("%d bad programs, want at least 10 (run make in testdata/verifier)", len(objs))
	}
	for _, obj := range objs {
		t.Run(strings.TrimSuffix(filepath.Base(obj), ".o"), func(t *testing.T) {
			line, name := badExpectation(t, strings.TrimSuffix(obj, ".o")+".c")
			err := verifyObject(t, obj, nil)
			if err == nil {
				t.Fatalf("accepted; want %s at line %d", name, line)
			}
			var ve *verifier.Error
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *verifier.Error", err)
			}
			if !errors.Is(err, sentinels[name]) {
				t.Errorf("error %v, want %s", err, name)
			}
			if ve.Line.Num != line {
				t.Errorf("error at line %d (%v), want line %d", ve.Line.Num, err, line)
			}
			t.Log(err)
		})
	}
}
