package maps_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

var key0 = []byte{0, 0, 0, 0}

// flipWorker does what a program does with a double buffer: inside a
// read-side section it looks up the outer map's slot 0 and increments the
// counter in whatever inner map it finds there. It runs until the stop
// word of map "ctl" is set and prints how many increments it made.
var _ = proctest.Register("mim-worker", func(args []string) error {
	r, err := userbpf.OpenRegion(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	outer, err := r.OpenMap("outer", 0)
	if err != nil {
		return err
	}
	ctl, err := r.OpenMap("ctl", 0)
	if err != nil {
		return err
	}
	stopPtr, err := ctl.ValuePointer(0)
	if err != nil {
		return err
	}
	stop := (*atomic.Uint64)(stopPtr)
	fmt.Println("ready")
	if !bufio.NewScanner(os.Stdin).Scan() {
		return errors.New("no go")
	}
	n := uint64(0)
	var ierr error
	for stop.Load() == 0 {
		r.RCU().ReadPinned(func() {
			inner, err := outer.InnerMap(key0)
			if err != nil || inner == nil {
				ierr = fmt.Errorf("slot 0 empty or unreadable: %v", err)
				return
			}
			if _, err := inner.Atomic(key0, 0, 8, maps.AtomicAdd, 1, 0); err != nil {
				ierr = err
			}
		})
		if ierr != nil {
			return ierr
		}
		n++
	}
	fmt.Println(n)
	return nil
})

// TestDoubleBufferFlips is the double-buffer pattern the kernel cannot make
// safe without a synchronize_rcu per update: worker processes increment a
// counter in the inner map they find in the outer slot, at full speed,
// while this process flips the slot between inner maps A and B, waits for
// the old one to be unreachable (Synchronize, or WaitUnreferenced), and
// drains it. Every increment must be drained exactly once, and no
// increment may land in a map after it was drained (checked when the map
// comes back into the slot: its counter must still be 0).
func TestDoubleBufferFlips(t *testing.T) {
	for _, how := range []string{"synchronize", "wait-unreferenced", "flag-wait-grace"} {
		t.Run(how, func(t *testing.T) { doubleBuffer(t, how) })
	}
}

func doubleBuffer(t *testing.T, how string) {
	r, path := newRegion(t)
	bufs := [2]*maps.Map{
		createMap(t, r, maps.Spec{Name: "bufA", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}),
		createMap(t, r, maps.Spec{Name: "bufB", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}),
	}
	outer := createMap(t, r, maps.Spec{Name: "outer", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: bufs[0]})
	ctl := createMap(t, r, maps.Spec{Name: "ctl", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	id := make([]byte, 4)
	binary.NativeEndian.PutUint32(id, bufs[0].ID())
	if err := outer.Update(key0, id, maps.UpdateAny); err != nil {
		t.Fatal(err)
	}

	const workers = 3
	var kids []*proctest.Child
	var ins []interface{ Write([]byte) (int, error) }
	for range workers {
		cmd := proctest.Command("mim-worker", path)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		c := proctest.StartCmd(t, "mim-worker", cmd)
		c.Expect(t, "ready")
		kids, ins = append(kids, c), append(ins, in)
	}
	for _, in := range ins {
		fmt.Fprintln(in, "go")
	}

	flips := 3000
	if testing.Short() {
		flips = 300
	}
	drained, late := uint64(0), 0
	cur := 0
	for f := 0; f < flips; f++ {
		next := 1 - cur
		if v, _ := bufs[next].Atomic(key0, 0, 8, maps.AtomicAdd, 0, 0); v != 0 {
			late++ // an increment landed after this buffer was drained
		}
		binary.NativeEndian.PutUint32(id, bufs[next].ID())
		flags := uint64(maps.UpdateAny)
		if how == "flag-wait-grace" {
			flags |= maps.FlagWaitGrace
		}
		if err := outer.Update(key0, id, flags); err != nil {
			t.Fatal(err)
		}
		switch how {
		case "synchronize":
			r.Synchronize()
		case "wait-unreferenced":
			if err := bufs[cur].WaitUnreferenced(10 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
		old, err := bufs[cur].Atomic(key0, 0, 8, maps.AtomicXchg, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		drained += old
		cur = next
	}

	stop, _ := ctl.ValuePointer(0)
	(*atomic.Uint64)(stop).Store(1)
	total := uint64(0)
	for _, c := range kids {
		n, err := strconv.ParseUint(c.Line(t), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		c.Wait(t)
	}
	r.Synchronize()
	for _, b := range bufs {
		old, _ := b.Atomic(key0, 0, 8, maps.AtomicXchg, 0, 0)
		drained += old
	}
	if late != 0 {
		t.Errorf("%d times an increment landed in a buffer after it was drained", late)
	}
	if drained != total {
		t.Errorf("drained %d increments, workers made %d", drained, total)
	}
	t.Logf("%s: %d flips, %d increments by %d processes, all drained exactly once", how, flips, total, workers)
}

func TestMapInMapErrors(t *testing.T) {
	r, _ := newRegion(t)
	tmpl := createMap(t, r, maps.Spec{Name: "tmpl", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	other := createMap(t, r, maps.Spec{Name: "other", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	hash := createMap(t, r, maps.Spec{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	for _, c := range []struct {
		spec maps.Spec
		want error
	}{
		{maps.Spec{Name: "x", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.EBADF},
		{maps.Spec{Name: "x", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 8, MaxEntries: 1, InnerMap: tmpl}, unix.EINVAL},
		{maps.Spec{Name: "x", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: tmpl, Flags: maps.FlagRdOnlyProg}, unix.EINVAL},
		{maps.Spec{Name: "x", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: tmpl, Flags: maps.FlagMmapable}, unix.EINVAL},
		{maps.Spec{Name: "x", Type: maps.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: tmpl, HasLock: true}, unix.EOPNOTSUPP},
	} {
		if _, err := r.CreateMap(c.spec); !errors.Is(err, c.want) {
			t.Errorf("create %v: %v, want %v", c.spec.String(), err, c.want)
		}
	}
	aom := createMap(t, r, maps.Spec{Name: "aom", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, InnerMap: tmpl})
	if _, err := r.CreateMap(maps.Spec{Name: "x", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: aom}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("map of maps of maps: %v", err)
	}
	idOf := func(m *maps.Map) []byte { b := make([]byte, 4); binary.NativeEndian.PutUint32(b, m.ID()); return b }
	v := make([]byte, 4)
	cases := []struct {
		what string
		err  error
		want error
	}{
		{"update with BPF_NOEXIST", aom.Update(key0, idOf(tmpl), maps.UpdateNoExist), unix.EINVAL},
		{"update past max_entries", aom.Update([]byte{9, 0, 0, 0}, idOf(tmpl), 0), unix.E2BIG},
		{"incompatible max_entries (ARRAY template)", aom.Update(key0, idOf(other), 0), unix.EINVAL},
		{"incompatible type", aom.Update(key0, idOf(hash), 0), unix.EINVAL},
		{"lookup of an empty slot", aom.Lookup(key0, v, 0), unix.ENOENT},
		{"delete of an empty slot", aom.Delete(key0), unix.ENOENT},
		{"delete past max_entries", aom.Delete([]byte{9, 0, 0, 0}), unix.E2BIG},
		{"lookup and delete", aom.LookupAndDelete(key0, v, 0), maps.ErrNotSupported},
		{"delete flags on a plain map", tmpl.DeleteFlags(key0, maps.FlagWaitGrace), unix.EINVAL},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
	// A template with BPF_F_INNER_MAP accepts inner maps of any size.
	loose := createMap(t, r, maps.Spec{Name: "loose", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: maps.FlagInnerMap})
	big := createMap(t, r, maps.Spec{Name: "big", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 64, Flags: maps.FlagInnerMap})
	hom := createMap(t, r, maps.Spec{Name: "hom", Type: maps.HashOfMaps, KeySize: 8, ValueSize: 4, MaxEntries: 4, InnerMap: loose})
	k := make([]byte, 8)
	if err := hom.Update(k, idOf(big), maps.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	if err := hom.Update(k, idOf(loose), maps.UpdateNoExist); !errors.Is(err, unix.EEXIST) {
		t.Errorf("NOEXIST on a present key: %v", err)
	}
	if err := hom.Update(k, idOf(loose), maps.UpdateExist); err != nil || big.OuterRefs() != 0 || loose.OuterRefs() != 1 {
		t.Errorf("replace: %v, refs big %d loose %d", err, big.OuterRefs(), loose.OuterRefs())
	}
	if err := hom.Lookup(k, v, 0); err != nil || binary.NativeEndian.Uint32(v) != loose.ID() {
		t.Errorf("lookup returns the inner map's ID: %v %v", err, v)
	}
}
