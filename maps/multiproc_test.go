package maps_test

// Several real processes update, delete and iterate the same hash at once
// (the kernel's test_maps run_parallel, with a checker): each child owns a
// stripe of keys whose state it knows exactly, and all of them overwrite a
// few shared keys. Afterwards no key may be lost, duplicated or torn.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"unsafe"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
	"golang.org/x/sys/unix"
)

// scaled picks the race-detector size of a test when it is on.
func scaled(normal, race int) int {
	if raceOn {
		return race
	}
	return normal
}

// The parallel hash test's geometry: keys [0, stripeKeys) are split among
// the children by key % procs; keys [stripeKeys, stripeKeys+sharedKeys)
// are written by everyone.
const (
	parProcs    = 4
	stripeKeys  = 512
	sharedKeys  = 8
	parMaxElems = 512 // with ~2/3 of the stripe live: chains of 1-3 elements
)

// finalGen is the generation of the children's last pass, after rounds.
func finalGen(rounds int) uint32 { return uint32(rounds) + 1 }

// sharedGen is the generation child id writes into a shared key in round r.
func sharedGen(id, r int) uint32 { return uint32(id)<<24 | uint32(r) }

// finalLive says whether an owned key is present after the final pass.
func finalLive(k uint64) bool { return k%3 != 0 }

// churn: path name id rounds — the stripe owner. It checks each of its own
// keys against the state it alone changes, after each change, with the
// kernel's flag semantics (NOEXIST for an absent key, EXIST for a present
// one must succeed); checks that shared keys are never torn; and walks the
// whole map each round while the others change it.
var _ = proctest.Register("churn", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	id, _ := strconv.Atoi(args[2])
	rounds, _ := strconv.Atoi(args[3])
	proctest.Ready("ready")
	awaitLine()
	return churn(m, id, rounds)
})

// churn is the stripe owner's work (see the "churn" child).
func churn(m *maps.Map, id, rounds int) error {
	present := map[uint64]uint32{} // own key → generation stored
	v, got := make([]byte, patternSize), make([]byte, patternSize)
	check := func(k uint64) error {
		err := m.Lookup(key64(k), got, 0)
		want, live := present[k]
		switch {
		case !live && !errors.Is(err, maps.ErrKeyNotExist):
			return fmt.Errorf("own key %d was deleted, lookup: %v % x", k, err, got)
		case live && err != nil:
			return fmt.Errorf("own key %d (gen %d) lost: %v", k, want, err)
		case live:
			g, err := checkPattern(got, k)
			if err != nil {
				return err
			}
			if g != want {
				return fmt.Errorf("own key %d has gen %d, this process stored %d", k, g, want)
			}
		}
		return nil
	}
	setOwn := func(k uint64, gen uint32) error {
		flags := uint64(maps.UpdateNoExist)
		if _, live := present[k]; live {
			flags = maps.UpdateExist
		}
		putPattern(v, k, gen)
		if err := m.Update(key64(k), v, flags); err != nil {
			return fmt.Errorf("update own key %d flags %d: %v", k, flags, err)
		}
		present[k] = gen
		return check(k)
	}
	delOwn := func(k uint64) error {
		err := m.Delete(key64(k))
		_, live := present[k]
		if live && err != nil || !live && !errors.Is(err, maps.ErrKeyNotExist) {
			return fmt.Errorf("delete own key %d (present %v): %v", k, live, err)
		}
		delete(present, k)
		return check(k)
	}
	setShared := func(r int) error {
		for k := uint64(stripeKeys); k < stripeKeys+sharedKeys; k++ {
			putPattern(v, k, sharedGen(id, r))
			if err := m.Update(key64(k), v, maps.UpdateAny); err != nil {
				return fmt.Errorf("update shared key %d: %v", k, err)
			}
			if err := m.Lookup(key64(k), got, 0); err != nil {
				return fmt.Errorf("shared key %d lost: %v", k, err)
			}
			if g, err := checkPattern(got, k); err != nil {
				return err
			} else if int(g>>24) >= parProcs {
				return fmt.Errorf("shared key %d written by child %d of %d", k, g>>24, parProcs)
			}
		}
		return nil
	}
	// walkBusy iterates while others change the map: it may restart (a
	// deleted cursor key gives the first key again), so it is bounded, but
	// every key it yields must be one the test uses and untorn if present.
	walkBusy := func() error {
		var cur []byte
		next := make([]byte, 8)
		for range 4 * parMaxElems {
			if err := m.NextKey(cur, next); errors.Is(err, maps.ErrKeyNotExist) {
				return nil
			} else if err != nil {
				return fmt.Errorf("next key: %v", err)
			}
			k := binary.LittleEndian.Uint64(next)
			if k >= stripeKeys+sharedKeys {
				return fmt.Errorf("walk yields key %d that no process stored", k)
			}
			if err := m.Lookup(next, got, 0); err == nil {
				if _, err := checkPattern(got, k); err != nil {
					return fmt.Errorf("walk: %v", err)
				}
			} else if !errors.Is(err, maps.ErrKeyNotExist) {
				return err
			}
			cur = append(cur[:0], next...)
		}
		return nil
	}

	for rd := 1; rd <= rounds; rd++ {
		for k := uint64(id); k < stripeKeys; k += parProcs {
			var err error
			if (k/parProcs+uint64(rd))%4 == 0 {
				err = delOwn(k)
			} else {
				err = setOwn(k, uint32(rd))
			}
			if err != nil {
				return fmt.Errorf("round %d: %v", rd, err)
			}
		}
		if err := setShared(rd); err != nil {
			return fmt.Errorf("round %d: %v", rd, err)
		}
		if err := walkBusy(); err != nil {
			return fmt.Errorf("round %d: %v", rd, err)
		}
	}
	// The final pass leaves a state the parent can predict.
	for k := uint64(id); k < stripeKeys; k += parProcs {
		var err error
		if finalLive(k) {
			err = setOwn(k, finalGen(rounds))
		} else if _, live := present[k]; live {
			err = delOwn(k)
		}
		if err != nil {
			return fmt.Errorf("final pass: %v", err)
		}
	}
	return setShared(int(finalGen(rounds)))
}

// TestConcurrentGoroutines: one handle shared by goroutines of one process
// ("a Map is safe for concurrent use"), with the parallel test's checker.
// Under -race this also checks the Go-side state behind the commands
// (pooled RCU readers, handles) for data races.
func TestConcurrentGoroutines(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "gor", Type: maps.Hash, KeySize: 8, ValueSize: patternSize, MaxEntries: parMaxElems})
	rounds := scaled(300, 40)
	errs := make(chan error, parProcs)
	for id := range parProcs {
		go func() { errs <- churn(m, id, rounds) }()
	}
	for range parProcs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	checkParallelHash(t, m, rounds)
}

func TestParallelHash(t *testing.T) {
	for _, flags := range []uint32{0, maps.FlagNoPrealloc} {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			r, path := newRegion(t)
			m := createMap(t, r, maps.Spec{Name: "par", Type: maps.Hash, KeySize: 8, ValueSize: patternSize,
				MaxEntries: parMaxElems, Flags: flags})
			rounds := scaled(500, 60)
			cs := startAll(t, parProcs, "churn", func(i int) []string {
				return []string{path, "par", strconv.Itoa(i), strconv.Itoa(rounds)}
			})
			for _, c := range cs {
				c.Wait(t)
			}
			checkParallelHash(t, m, rounds)
		})
	}
}

// checkParallelHash is the checker: the walk must visit exactly the keys
// the final passes left, each once, each untorn, with the last value its
// owner stored; the element count must agree.
func checkParallelHash(t *testing.T, m *maps.Map, rounds int) {
	t.Helper()
	keys, err := walk(m, 2*parMaxElems)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]bool{}
	for k := uint64(0); k < stripeKeys+sharedKeys; k++ {
		if k >= stripeKeys || finalLive(k) {
			want[k] = true
		}
	}
	v := make([]byte, patternSize)
	for _, kb := range keys {
		k := binary.LittleEndian.Uint64(kb)
		if !want[k] {
			t.Errorf("key %d is in the map, its owner deleted it last", k)
			continue
		}
		delete(want, k)
		if err := m.Lookup(kb, v, 0); err != nil {
			t.Errorf("key %d: walked but lookup: %v", k, err)
			continue
		}
		g, err := checkPattern(v, k)
		switch {
		case err != nil:
			t.Error(err)
		case k < stripeKeys && g != finalGen(rounds):
			t.Errorf("own key %d has gen %d, its owner stored %d last", k, g, finalGen(rounds))
		case k >= stripeKeys && (g&0xffffff != finalGen(rounds) || g>>24 >= parProcs):
			t.Errorf("shared key %d has gen %#x: not any child's last write", k, g)
		}
	}
	for k := range want {
		t.Errorf("key %d lost: stored last, not walked", k)
	}
	if c := m.Count(); c != int64(len(keys)) {
		t.Errorf("Count() = %d, the walk found %d keys", c, len(keys))
	}
}

// lruchurn: path name id inserts — insert `inserts` distinct keys (child
// id's own range) into an LRU hash much smaller than that, re-touching a
// few shared keys as it goes. An LRU hash never refuses an insert (no
// E2BIG: it evicts), and never holds more than max_entries.
var _ = proctest.Register("lruchurn", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	id, _ := strconv.Atoi(args[2])
	inserts, _ := strconv.Atoi(args[3])
	v, got := make([]byte, patternSize), make([]byte, patternSize)
	proctest.Ready("ready")
	awaitLine()
	for i := range inserts {
		k := uint64(id+1)<<20 | uint64(i)
		if i%8 == 0 {
			k = uint64(i / 8 % 4) // a shared key
		}
		putPattern(v, k, uint32(i))
		if err := m.Update(key64(k), v, maps.UpdateAny); err != nil {
			return fmt.Errorf("insert %d (key %#x) into a full LRU: %v", i, k, err)
		}
		if c := m.Count(); c > int64(m.MaxEntries()) {
			return fmt.Errorf("LRU holds %d elements, max_entries %d", c, m.MaxEntries())
		}
		// Recently inserted keys may already be evicted by the others, but
		// what a lookup finds must be whole.
		if err := m.Lookup(key64(k), got, 0); err == nil {
			if _, err := checkPattern(got, k); err != nil {
				return err
			}
		} else if !errors.Is(err, maps.ErrKeyNotExist) {
			return err
		}
	}
	return nil
})

func TestParallelLRUHash(t *testing.T) {
	for _, flags := range []uint32{0, maps.FlagNoCommonLRU} {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			r, path := newRegion(t)
			m := createMap(t, r, maps.Spec{Name: "lru", Type: maps.LRUHash, KeySize: 8, ValueSize: patternSize,
				MaxEntries: 256, Flags: flags})
			inserts := scaled(100000, 15000)
			cs := startAll(t, parProcs, "lruchurn", func(i int) []string {
				return []string{path, "lru", strconv.Itoa(i), strconv.Itoa(inserts)}
			})
			for _, c := range cs {
				c.Wait(t)
			}
			keys, err := walk(m, 2*int(m.MaxEntries()))
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > int(m.MaxEntries()) || len(keys) == 0 {
				t.Errorf("LRU holds %d keys after %d inserts, max_entries %d", len(keys), parProcs*inserts, m.MaxEntries())
			}
			if c := m.Count(); c != int64(len(keys)) {
				t.Errorf("Count() = %d, the walk found %d keys", c, len(keys))
			}
			v := make([]byte, patternSize)
			for _, kb := range keys {
				k := binary.LittleEndian.Uint64(kb)
				if err := m.Lookup(kb, v, 0); err != nil {
					t.Errorf("key %#x walked, lookup: %v", k, err)
				} else if _, err := checkPattern(v, k); err != nil {
					t.Error(err)
				}
			}
			// The map still takes new keys without E2BIG.
			for i := range 2 * int(m.MaxEntries()) {
				k := uint64(1)<<40 | uint64(i)
				putPattern(v, k, 0)
				noErr(t, "insert into a full LRU", m.Update(key64(k), v, maps.UpdateNoExist))
			}
			if c := m.Count(); c > int64(m.MaxEntries()) {
				t.Errorf("Count() = %d > max_entries %d", c, m.MaxEntries())
			}
		})
	}
}

// TestLRUHashSmallContended: more writers than elements. Every insert into
// an LRU hash succeeds (it evicts), even when max_entries is smaller than
// the number of processes inserting at once.
func TestLRUHashSmallContended(t *testing.T) {
	for _, max := range []uint32{1, 2, 4} {
		t.Run(strconv.Itoa(int(max)), func(t *testing.T) {
			r, path := newRegion(t)
			m := createMap(t, r, maps.Spec{Name: "lrus", Type: maps.LRUHash, KeySize: 8, ValueSize: patternSize, MaxEntries: max})
			cs := startAll(t, parProcs, "lruchurn", func(i int) []string {
				return []string{path, "lrus", strconv.Itoa(i), strconv.Itoa(scaled(20000, 4000))}
			})
			for _, c := range cs {
				c.Wait(t)
			}
			if c := m.Count(); c < 1 || c > int64(max) {
				t.Errorf("Count() = %d, want 1..%d", c, max)
			}
		})
	}
}

// TestLRUHashKeepsRecentlyUpdated: in a full LRU hash, a key updated
// between every insert of a new key is never the one evicted (a new or
// replaced element is referenced); keys never touched again are.
func TestLRUHashKeepsRecentlyUpdated(t *testing.T) {
	for _, flags := range []uint32{0, maps.FlagNoCommonLRU} {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			if flags&maps.FlagNoCommonLRU != 0 {
				// Inserts take from the list of the CPU they run on: a
				// thread that migrated midway would fill two lists, and the
				// first key's list would not be under pressure.
				pinToOneCPU(t)
			}
			r, _ := newRegion(t)
			m := createMap(t, r, maps.Spec{Name: "lrur", Type: maps.LRUHash, KeySize: 8, ValueSize: patternSize,
				MaxEntries: 128, Flags: flags})
			v := make([]byte, patternSize)
			hot := uint64(1 << 40)
			for i := range uint64(10 * 128) {
				putPattern(v, i, 0)
				noErr(t, "insert", m.Update(key64(i), v, maps.UpdateAny))
				putPattern(v, hot, uint32(i))
				noErr(t, "update the hot key", m.Update(key64(hot), v, maps.UpdateAny))
			}
			if err := m.Lookup(key64(hot), v, 0); err != nil {
				t.Errorf("the key updated after every insert was evicted: %v", err)
			}
			if err := m.Lookup(key64(0), v, 0); err == nil {
				t.Errorf("the first key, never touched again, survived %d inserts into a %d-element LRU", 10*128, 128)
			}
			if c := m.Count(); c > int64(m.MaxEntries()) {
				t.Errorf("Count() = %d > max_entries %d", c, m.MaxEntries())
			}
		})
	}
}

// pinToOneCPU keeps the test's goroutine on its OS thread and that thread
// on the CPU it runs on now, until the test ends.
func pinToOneCPU(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		t.Skipf("sched_getaffinity: %v", err)
	}
	var cpu uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); e != 0 {
		runtime.UnlockOSThread()
		t.Skipf("getcpu: %v", e)
	}
	var one unix.CPUSet
	one.Set(int(cpu))
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		runtime.UnlockOSThread()
		t.Skipf("sched_setaffinity: %v", err)
	}
	t.Cleanup(func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	})
}
