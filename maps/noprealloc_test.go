package maps_test

// BPF_F_NO_PREALLOC hashes: elements come from the region's allocator as
// they are inserted and go back to it a grace period after they are
// unlinked, by whichever process retired them (or whoever reaps it).

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

const (
	npMax       = 1000
	npValueSize = 64
)

func npSpec() maps.Spec {
	return maps.Spec{Name: "np", Type: maps.Hash, KeySize: 4, ValueSize: npValueSize, MaxEntries: npMax,
		Flags: maps.FlagNoPrealloc}
}

// usedBytes is the region heap in use, after checking the allocator.
func usedBytes(t *testing.T, r *userbpf.Region) uint64 {
	t.Helper()
	if p := r.Shared().Check().Problems; len(p) != 0 {
		t.Fatalf("region allocator: %v", p)
	}
	return r.Stats().UsedBytes
}

func TestNoPreallocGrowsAndShrinks(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, npSpec())
	v := make([]byte, npValueSize)
	// Warm up once: the first retired element gives this process its
	// retire ring, which it keeps.
	noErr(t, "update", m.Update(key32(0), v, maps.UpdateAny))
	noErr(t, "delete", m.Delete(key32(0)))
	r.RCU().Barrier()
	base := usedBytes(t, r)

	for k := range uint32(npMax) {
		noErr(t, fmt.Sprintf("insert %d", k), m.Update(key32(k), v, maps.UpdateNoExist))
	}
	full := usedBytes(t, r)
	if grew := full - base; grew < npMax*(4+npValueSize) {
		t.Errorf("%d elements of %d+%d bytes took %d bytes of the region", npMax, 4, npValueSize, grew)
	}
	// Full: a new key is E2BIG, and the attempt costs nothing.
	for k := uint32(npMax); k < npMax+100; k++ {
		wantErr(t, "insert into a full map", m.Update(key32(k), v, maps.UpdateAny), maps.ErrFull, syscall.E2BIG)
	}
	if c := m.Count(); c != npMax {
		t.Errorf("Count() = %d, want %d", c, npMax)
	}
	// Replacing keys of a full map works; the replaced elements come back.
	for k := range uint32(npMax) {
		noErr(t, "replace in a full map", m.Update(key32(k), v, maps.UpdateExist))
	}
	r.RCU().Barrier()
	if used := usedBytes(t, r); used != full {
		t.Errorf("region use %d after E2BIG attempts and replacing every element, want %d as when the map filled", used, full)
	}

	for k := range uint32(npMax) {
		noErr(t, "delete", m.Delete(key32(k)))
	}
	if c := m.Count(); c != 0 {
		t.Errorf("Count() = %d after deleting every key", c)
	}
	r.RCU().Barrier()
	if p := r.RCU().Pending(); p != 0 {
		t.Errorf("%d retired blocks pending after Barrier", p)
	}
	if used := usedBytes(t, r); used != base {
		t.Errorf("region use %d after deleting every element and a barrier, want %d as before they were inserted (%d bytes kept)",
			used, base, int64(used)-int64(base))
	}
	// And the map fills again to max_entries.
	for k := range uint32(npMax) {
		noErr(t, "refill", m.Update(key32(k), v, maps.UpdateNoExist))
	}
	wantErr(t, "insert into the refilled map", m.Update(key32(npMax), v, maps.UpdateAny), maps.ErrFull, syscall.E2BIG)
}

// npchurn: path name — insert every key, delete every key, print "done",
// then wait for a line: "exit" closes the region, EOF (or SIGKILL) not.
var _ = proctest.Register("npchurn", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	v := make([]byte, npValueSize)
	for k := range uint32(npMax) {
		if err := m.Update(key32(k), v, maps.UpdateNoExist); err != nil {
			return err
		}
	}
	for k := range uint32(npMax) {
		if err := m.Delete(key32(k)); err != nil {
			return err
		}
	}
	proctest.Ready("done " + strconv.Itoa(r.RCU().Pending()))
	if awaitLine() == "exit" {
		return r.Close()
	}
	return nil
})

// TestNoPreallocFreedByOtherProcess: elements another process deleted are
// freed when it detaches, or, if it is killed, when a survivor reaps it.
func TestNoPreallocFreedByOtherProcess(t *testing.T) {
	for _, end := range []string{"exit", "kill"} {
		t.Run(end, func(t *testing.T) {
			r, path := newRegion(t)
			createMap(t, r, npSpec())
			base := usedBytes(t, r)
			c := startChild(t, "npchurn", path, "np")
			l := c.Line(t)
			var pending int
			if _, err := fmt.Sscanf(l, "done %d", &pending); err != nil {
				t.Fatalf("child said %q", l)
			}
			if pending == 0 {
				t.Logf("the child freed every element before it was told to end")
			}
			if end == "exit" {
				c.tell(t, "exit")
				c.Wait(t)
			} else {
				c.Kill(t)
				if n := r.Shared().ReapDead(); n != 1 {
					t.Errorf("ReapDead() = %d after killing the child, want 1", n)
				}
			}
			if used := usedBytes(t, r); used != base {
				t.Errorf("region use %d after the child's elements were retired and it ended (%s), want %d (%d bytes kept)",
					used, end, base, int64(used)-int64(base))
			}
		})
	}
}

// TestNoPreallocLRUIsRefused: LRU maps are always preallocated.
func TestNoPreallocLRUIsRefused(t *testing.T) {
	r, _ := newRegion(t)
	_, err := r.CreateMap(maps.Spec{Name: "lnp", Type: maps.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, Flags: maps.FlagNoPrealloc})
	if !errors.Is(err, maps.ErrNotSupported) {
		t.Errorf("LRU hash with BPF_F_NO_PREALLOC: %v, want ENOTSUPP", err)
	}
}
