package maps_test

// Processes killed with SIGKILL in the middle of their work, with no chance
// to clean up: the map must stay usable and consistent for the survivors.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

// The crash test's map: few buckets, so that a killed process often holds
// a bucket lock others need.
const (
	crashKeys       = 48
	crashMaxEntries = 64
)

// crashOps runs a random mix of every writing command on keys
// [0, crashKeys) until stop returns true, printing "tick" every 64
// operations. Only the errors the kernel gives for these commands on these
// keys are allowed.
func crashOps(m *maps.Map, seed uint64, stop func() bool) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	v, got := make([]byte, patternSize), make([]byte, patternSize)
	for i := uint32(1); !stop(); i++ {
		k := rng.Uint64N(crashKeys)
		putPattern(v, k, i)
		var err error
		switch op := rng.IntN(10); {
		case op < 5:
			err = m.Update(key64(k), v, maps.UpdateAny)
		case op < 6:
			err = m.Update(key64(k), v, maps.UpdateNoExist)
		case op < 7:
			err = m.Update(key64(k), v, maps.UpdateExist)
		case op < 9:
			err = m.Delete(key64(k))
		default:
			if err = m.LookupAndDelete(key64(k), got, 0); err == nil {
				if _, err := checkPattern(got, k); err != nil {
					return err
				}
			}
		}
		if err != nil && !errors.Is(err, maps.ErrKeyNotExist) && !errors.Is(err, maps.ErrKeyExist) {
			return fmt.Errorf("op %d on key %d: %v", i, k, err)
		}
		if err := m.Lookup(key64(k), got, 0); err == nil {
			if _, err := checkPattern(got, k); err != nil {
				return err
			}
		}
		if i%64 == 0 {
			proctest.Ready("tick")
		}
	}
	return nil
}

// victim: path name seed — run crashOps until killed.
var _ = proctest.Register("victim", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	seed, _ := strconv.ParseUint(args[2], 10, 64)
	return crashOps(m, seed, func() bool { return false })
})

// survivor: path name seed — run crashOps alongside the victims until the
// parent says "stop", then print "stopped".
var _ = proctest.Register("survivor", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	seed, _ := strconv.ParseUint(args[2], 10, 64)
	var stop atomic.Bool
	go func() { awaitLine(); stop.Store(true) }()
	if err := crashOps(m, seed, stop.Load); err != nil {
		return err
	}
	proctest.Ready("stopped")
	return nil
})

// TestKilledWriters kills processes at random moments of their update,
// delete and lookup-and-delete loop while a survivor runs the same loop,
// then checks the map: the walk ends and visits each key once, every
// walked key is found by lookup with an untorn value, lookups and the walk
// agree on every key, the count is right up to the documented drift, and
// every bucket takes updates again (a bucket lock a victim died holding is
// recovered).
//
// Count drift: a writer killed between linking or unlinking an element and
// adjusting the element count leaves the count one too high (never too
// low): the map then holds one element less than max_entries. So after
// `kills` kills, 0 <= Count() - walked <= kills.
func TestKilledWriters(t *testing.T) {
	r, path := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "crash", Type: maps.Hash, KeySize: 8, ValueSize: patternSize,
		MaxEntries: crashMaxEntries})
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	surv := startChild(t, "survivor", path, "crash", strconv.FormatUint(seed+1, 10))
	surv.Expect(t, "tick")
	kills := scaled(12, 6)
	for i := range kills {
		c := startChild(t, "victim", path, "crash", strconv.FormatUint(seed+uint64(i)+2, 10))
		for range 1 + rng.IntN(6) {
			c.Expect(t, "tick")
		}
		c.Kill(t)
		// The survivor keeps going across the victim's death.
		surv.Expect(t, "tick")
	}
	surv.tell(t, "stop")
	for l := surv.Line(t); l != "stopped"; l = surv.Line(t) {
		if l != "tick" {
			t.Fatalf("survivor said %q", l)
		}
	}
	surv.Wait(t)
	t.Logf("%d kills, %d spin lock recoveries", kills, r.Stats().Counters["spin_lock_recoveries"])

	checkAfterCrashes(t, m, kills)

	// Every key (so every bucket the keys use) takes updates and deletes.
	v := make([]byte, patternSize)
	for k := range uint64(crashKeys) {
		putPattern(v, k, 1)
		noErr(t, fmt.Sprintf("update key %d after the crashes", k), m.Update(key64(k), v, maps.UpdateAny))
	}
	checkAfterCrashes(t, m, kills)
	for k := range uint64(crashKeys) {
		noErr(t, fmt.Sprintf("delete key %d after the crashes", k), m.Delete(key64(k)))
	}
	if keys, err := walk(m, crashMaxEntries); err != nil || len(keys) != 0 {
		t.Errorf("after deleting every key the walk finds %d keys, %v", len(keys), err)
	}
	if c := m.Count(); c < minDrift(kills) || c > int64(kills) {
		t.Errorf("empty map: Count() = %d, want 0..%d (one drift per kill at most)", c, kills)
	}
	if p := r.Shared().Check().Problems; len(p) != 0 {
		t.Errorf("region allocator after the crashes: %v", p)
	}
}

// minDrift is the lowest Count() - walked the crash test accepts: a kill
// never leaves the count below the elements linked.
func minDrift(kills int) int64 { return 0 }

// checkAfterCrashes checks a quiescent map the crash test wrote.
func checkAfterCrashes(t *testing.T, m *maps.Map, kills int) {
	t.Helper()
	keys, err := walk(m, 4*crashMaxEntries)
	if err != nil {
		t.Fatalf("walk after the crashes: %v", err)
	}
	walked := map[uint64]bool{}
	v := make([]byte, patternSize)
	for _, kb := range keys {
		k := binary.LittleEndian.Uint64(kb)
		walked[k] = true
		if k >= crashKeys {
			t.Errorf("walk found key %d, never stored", k)
			continue
		}
		if err := m.Lookup(kb, v, 0); err != nil {
			t.Errorf("key %d walked, lookup: %v", k, err)
		} else if _, err := checkPattern(v, k); err != nil {
			t.Error(err)
		}
	}
	for k := range uint64(crashKeys) {
		if err := m.Lookup(key64(k), v, 0); (err == nil) != walked[k] {
			t.Errorf("key %d: lookup says %v, the walk found it: %v", k, err, walked[k])
		}
	}
	if d := m.Count() - int64(len(keys)); d < minDrift(kills) || d > int64(kills) {
		t.Errorf("Count() = %d, the walk found %d keys: drift %d, want 0..%d (at most one per kill, never negative)",
			m.Count(), len(keys), d, kills)
	}
}

// holdvalue: path name key keysize — take key's value lock through
// WithLock, write one word of a two-word update, print "holding" and wait
// there until killed.
var _ = proctest.Register("holdvalue", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	k, _ := strconv.ParseUint(args[2], 10, 32)
	key := key64(k)
	if args[3] == "4" {
		key = key32(uint32(k))
	}
	return m.WithLock(key, func(v []byte) error {
		binary.LittleEndian.PutUint64(v[8:], 666)
		proctest.Ready("holding")
		awaitLine()
		return nil
	})
})

// TestKilledValueLockHolder: a process dies inside WithLock; the value
// lock is recovered (and counted) by the next WithLock, FlagLock lookup or
// FlagLock update, in every map type that allows a lock.
func TestKilledValueLockHolder(t *testing.T) {
	for _, typ := range []maps.Type{maps.Array, maps.Hash, maps.LRUHash} {
		for _, how := range []string{"WithLock", "LookupFlagLock", "UpdateFlagLock"} {
			t.Run(typ.String()+"/"+how, func(t *testing.T) {
				r, path := newRegion(t)
				ks, key := uint32(8), key64(1)
				if typ == maps.Array {
					ks, key = 4, key32(1)
				}
				m := createMap(t, r, maps.Spec{Name: "vl", Type: typ, KeySize: ks, ValueSize: 24, MaxEntries: 4,
					HasLock: true, LockOffset: 0})
				noErr(t, "update", m.Update(key, make([]byte, 24), maps.UpdateAny))
				c := startChild(t, "holdvalue", path, "vl", "1", strconv.Itoa(int(ks)))
				c.Expect(t, "holding")
				c.Kill(t)
				before := r.Stats().Counters["spin_lock_recoveries"]
				v := make([]byte, 24)
				switch how {
				case "WithLock":
					noErr(t, "WithLock after the holder died", m.WithLock(key, func(v []byte) error {
						binary.LittleEndian.PutUint64(v[16:], 7)
						return nil
					}))
				case "LookupFlagLock":
					noErr(t, "FlagLock lookup after the holder died", m.Lookup(key, v, maps.FlagLock))
				case "UpdateFlagLock":
					binary.LittleEndian.PutUint64(v[8:], 666)
					binary.LittleEndian.PutUint64(v[16:], 7)
					noErr(t, "FlagLock update after the holder died", m.Update(key, v, maps.UpdateExist|maps.FlagLock))
				}
				if n := r.Stats().Counters["spin_lock_recoveries"] - before; n != 1 {
					t.Errorf("spin_lock_recoveries grew by %d, want 1", n)
				}
				// The lock works again, and the value is as the dead holder left it.
				noErr(t, "WithLock", m.WithLock(key, func([]byte) error { return nil }))
				noErr(t, "lookup", m.Lookup(key, v, maps.FlagLock))
				if got := binary.LittleEndian.Uint64(v[8:]); got != 666 {
					t.Errorf("word the dead holder wrote = %d, want 666", got)
				}
				if got := binary.LittleEndian.Uint64(v[16:]); how != "LookupFlagLock" && got != 7 {
					t.Errorf("word written after the recovery = %d, want 7", got)
				}
			})
		}
	}
}
