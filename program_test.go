package userbpf_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/shm"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// runLockInc attaches to the region, opens the program lock_inc (loaded by
// the parent) and runs it the given number of times once told to start.
var _ = proctest.Register("run-lock-inc", func(args []string) error {
	r, err := userbpf.OpenRegion(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Program("lock_inc")
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(args[1])
	fmt.Println("ready")
	if !bufio.NewScanner(os.Stdin).Scan() {
		return fmt.Errorf("no go")
	}
	ctx := make([]byte, 64)
	for range n {
		if _, err := p.Run(ctx); err != nil {
			return err
		}
	}
	return nil
})

// A clang-compiled program (lookup + bpf_spin_lock + increment) runs in
// several processes while this process increments the same counter under
// the same lock with WithLock, and the total is exact. The value lives in
// an LRU hash in spinlock_lru.o, which the kernel would refuse.
func TestProgramAndUserSpaceShareTheLock(t *testing.T) {
	for _, obj := range []string{"spinlock_hash.o", "spinlock_lru.o"} {
		t.Run(obj, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r")
			r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c, err := userbpf.LoadCollection(r, filepath.Join("testdata", obj))
			if err != nil {
				t.Fatal(err)
			}
			totals := c.Maps["totals"]
			const procs, runs, mine = 3, 20000, 20000
			var kids []*proctest.Child
			var ins []interface{ Write([]byte) (int, error) }
			for range procs {
				cmd := proctest.Command("run-lock-inc", path, strconv.Itoa(runs))
				in, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				k := proctest.StartCmd(t, "run-lock-inc", cmd)
				k.Expect(t, "ready")
				kids, ins = append(kids, k), append(ins, in)
			}
			for _, in := range ins {
				fmt.Fprintln(in, "go")
			}
			key := []byte{0, 0, 0, 0}
			for range mine {
				err := totals.WithLock(key, func(v []byte) error {
					binary.NativeEndian.PutUint64(v[8:], binary.NativeEndian.Uint64(v[8:])+1)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range kids {
				k.Wait(t)
			}
			v := make([]byte, 16)
			if err := totals.Lookup(key, v, maps.FlagLock); err != nil {
				t.Fatal(err)
			}
			if got, want := binary.NativeEndian.Uint64(v[8:]), uint64(procs*runs+mine); got != want {
				t.Fatalf("total %d, want %d (%d program runs in %d processes + %d locked increments here)", got, want, procs*runs, procs, mine)
			}
		})
	}
}

// TestLoadTakenProgramName: an object with a program whose name the region
// already has is refused before anything of it is created: no map of its
// own (the copy's global-data maps have a new prefix), no program, no byte
// of the region used.
func TestLoadTakenProgramName(t *testing.T) {
	r, err := userbpf.CreateRegion(filepath.Join(t.TempDir(), "r"), userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := userbpf.LoadCollection(r, "testdata/graph.o"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/graph.o")
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "graph2.o")
	if err := os.WriteFile(other, b, 0o600); err != nil {
		t.Fatal(err)
	}
	progs, used := len(r.Programs()), r.Stats().UsedBytes
	if _, err := userbpf.LoadCollection(r, other); !errors.Is(err, shm.ErrExist) {
		t.Fatalf("load of taken program names: got %v, want ErrExist", err)
	}
	if _, err := r.OpenMap("graph2.data.A", 0); err == nil {
		t.Error("the refused object's map graph2.data.A was created")
	}
	if n, u := len(r.Programs()), r.Stats().UsedBytes; n != progs || u != used {
		t.Errorf("after the refused load: %d programs, %d bytes used; want %d, %d", n, u, progs, used)
	}
}
