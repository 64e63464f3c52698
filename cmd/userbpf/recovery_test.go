package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/lock"
)

// holdLock attaches to the region, takes the value lock at the offset it is
// given and then waits forever, holding it, until it is killed.
var _ = proctest.Register("hold-lock", func(args []string) error {
	r, err := userbpf.OpenRegion(args[0])
	if err != nil {
		return err
	}
	off, _ := strconv.ParseUint(args[1], 10, 64)
	s := r.Shared()
	(*lock.SpinLock)(s.Pointer(off)).Lock(s.Holder())
	fmt.Println("holding")
	select {}
})

// A process killed while holding a value lock: the next taker recovers the
// lock, and `region show` reports the recovery and no longer lists the
// dead process once it has been reaped.
func TestRegionShowReportsLockRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec")
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := r.Shared()
	off, err := s.Alloc(8)
	if err != nil {
		t.Fatal(err)
	}
	child := proctest.Start(t, "hold-lock", path, strconv.FormatUint(off, 10))
	child.Expect(t, "holding")

	show := func() regionJSON {
		t.Helper()
		res := cli(t, "-j", "region", "show", path)
		var got regionJSON
		if res.code != 0 || json.Unmarshal([]byte(res.stdout), &got) != nil {
			t.Fatalf("region show: %+v", res)
		}
		return got
	}
	if got := show(); len(got.Processes) != 2 { // this test process and the child
		t.Fatalf("processes before the kill: %+v", got.Processes)
	}
	child.Kill(t)

	l := (*lock.SpinLock)(s.Pointer(off))
	if recovered := l.Lock(s.Holder()); !recovered {
		t.Fatal("lock held by a killed process was not reported as recovered")
	}
	l.Unlock()
	got := show() // show attaches, which reaps the dead child
	if got.Counters["spin_lock_recoveries"] != 1 {
		t.Errorf("spin_lock_recoveries = %d, want 1", got.Counters["spin_lock_recoveries"])
	}
	if got.Counters["processes_reaped"] != 1 || len(got.Processes) != 1 {
		t.Errorf("after the kill: processes %+v, processes_reaped %d", got.Processes, got.Counters["processes_reaped"])
	}
}
