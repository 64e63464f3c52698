package userbpf_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/verifier"
)

// A program the verifier rejects is not stored, nor are its maps created;
// a good one loads into the same region afterwards.
func TestLoadCollectionVerifies(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var log bytes.Buffer
	_, err = userbpf.LoadCollectionWithOptions(r, filepath.Join("testdata", "verifier", "bad_null.o"), &userbpf.CollectionOptions{VerifierLog: &log})
	var ve *verifier.Error
	if !errors.As(err, &ve) || !errors.Is(err, verifier.ErrNullCheck) {
		t.Fatalf("load of bad_null.o: %v, want a verifier.ErrNullCheck", err)
	}
	if !strings.Contains(err.Error(), `bad_null.c:10 "c->packets++;`) {
		t.Errorf("error %q does not name the source line", err)
	}
	if !strings.Contains(log.String(), "R0=map_value_or_null(counters)") {
		t.Errorf("the log lacks the register states:\n%s", log.String())
	}
	if ps := r.Programs(); len(ps) != 0 {
		t.Errorf("programs stored after a rejected load: %v", ps)
	}
	if _, err := r.OpenMap("counters", 0); err == nil {
		t.Errorf("map counters created for a rejected object")
	}
	c, err := userbpf.LoadCollection(r, filepath.Join("testdata", "verifier", "good_lock.o"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Programs["good_lock"].Run(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
}
