package maps_test

// The value lock across processes, the feature the kernel lacks: user space
// takes the very bpf_spin_lock word of a value (WithLock, FlagLock commands)
// in any attached process, in arrays, hashes and LRU hashes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

// lockedTypes are the map types whose values may hold a bpf_spin_lock.
var lockedTypes = []maps.Type{maps.Array, maps.Hash, maps.LRUHash}

// lockedSpec is a map of type typ with one value lock at offset 0; keys
// are 4 bytes (array indexes, or hash keys).
func lockedSpec(name string, typ maps.Type, valueSize uint32) maps.Spec {
	return maps.Spec{Name: name, Type: typ, KeySize: 4, ValueSize: valueSize, MaxEntries: 8, HasLock: true, LockOffset: 0}
}

// lockinc: path name n — n times, increment the plain counter at offset 8
// of key 3's value inside WithLock.
var _ = proctest.Register("lockinc", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	n, _ := strconv.Atoi(args[2])
	key := key32(3)
	inc := func(v []byte) error {
		binary.NativeEndian.PutUint64(v[8:], binary.NativeEndian.Uint64(v[8:])+1)
		return nil
	}
	proctest.Ready("ready")
	awaitLine()
	for i := range n {
		if err := m.WithLock(key, inc); err != nil {
			return fmt.Errorf("increment %d: %v", i, err)
		}
	}
	return nil
})

// TestWithLockCountsAcrossProcesses: N processes × M read-modify-writes of
// a plain counter under the value lock; not one increment may be lost.
func TestWithLockCountsAcrossProcesses(t *testing.T) {
	const procs = 4
	incs := scaled(200000, 20000)
	for _, typ := range lockedTypes {
		t.Run(typ.String(), func(t *testing.T) {
			r, path := newRegion(t)
			m := createMap(t, r, lockedSpec("cnt", typ, 16))
			noErr(t, "update", m.Update(key32(3), make([]byte, 16), maps.UpdateAny))
			cs := startAll(t, procs, "lockinc", func(int) []string { return []string{path, "cnt", strconv.Itoa(incs)} })
			for _, c := range cs {
				c.Wait(t)
			}
			v := make([]byte, 16)
			noErr(t, "lookup", m.Lookup(key32(3), v, maps.FlagLock))
			if got := binary.NativeEndian.Uint64(v[8:]); got != uint64(procs*incs) {
				t.Errorf("counter = %d after %d processes × %d locked increments, want %d (%d lost)",
					got, procs, incs, procs*incs, procs*incs-int(got))
			}
			if w := binary.NativeEndian.Uint32(v); w != 0 {
				t.Errorf("lookup copied the lock word as %#x, want it read back as 0", w)
			}
		})
	}
}

// The mixed test's value: {lock u32, pad u32, a u64, b u64} with the
// invariant a == b for anyone who holds the lock.
const mixValueSize = 24

func mixPair(v []byte) (a, b uint64) {
	return binary.NativeEndian.Uint64(v[8:]), binary.NativeEndian.Uint64(v[16:])
}

// lockmix: path name role n seed — role "inc" increments a, then b, inside
// WithLock, checking a == b on entry; role "set" stores {x, x} with an
// FlagLock update and reads with FlagLock lookups, which must see a == b.
// Neither ever sees a != b unless a FlagLock command skipped the lock.
var _ = proctest.Register("lockmix", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	n, _ := strconv.Atoi(args[3])
	seed, _ := strconv.ParseUint(args[4], 10, 64)
	rng := rand.New(rand.NewPCG(seed, 3))
	key := key32(5)
	v := make([]byte, mixValueSize)
	inc := func(s []byte) error {
		a, b := mixPair(s)
		if a != b {
			return fmt.Errorf("inside WithLock: a = %d, b = %d", a, b)
		}
		binary.NativeEndian.PutUint64(s[8:], a+1)
		// Linger between the two halves, so that a writer that ignores
		// the lock would be seen.
		for i := range 64 {
			s[16+i%8] ^= 0
		}
		binary.NativeEndian.PutUint64(s[16:], b+1)
		return nil
	}
	proctest.Ready("ready")
	awaitLine()
	for i := range n {
		switch args[2] {
		case "inc":
			if err := m.WithLock(key, inc); err != nil {
				return fmt.Errorf("increment %d: %v", i, err)
			}
		case "set":
			x := rng.Uint64()
			binary.NativeEndian.PutUint64(v[8:], x)
			binary.NativeEndian.PutUint64(v[16:], x)
			if err := m.Update(key, v, maps.UpdateExist|maps.FlagLock); err != nil {
				return fmt.Errorf("FlagLock update %d: %v", i, err)
			}
			if err := m.Lookup(key, v, maps.FlagLock); err != nil {
				return fmt.Errorf("FlagLock lookup %d: %v", i, err)
			}
			if a, b := mixPair(v); a != b {
				return fmt.Errorf("FlagLock lookup %d: a = %d, b = %d (torn)", i, a, b)
			}
		}
	}
	return nil
})

// TestWithLockAndFlagLockMix: processes doing locked read-modify-writes and
// processes doing FlagLock updates and lookups on the same value; the
// invariant a == b holds for everyone, at every step, and at the end.
func TestWithLockAndFlagLockMix(t *testing.T) {
	n := scaled(100000, 10000)
	for _, typ := range lockedTypes {
		t.Run(typ.String(), func(t *testing.T) {
			r, path := newRegion(t)
			m := createMap(t, r, lockedSpec("mix", typ, mixValueSize))
			noErr(t, "update", m.Update(key32(5), make([]byte, mixValueSize), maps.UpdateAny))
			roles := []string{"inc", "set", "inc", "set"}
			cs := startAll(t, len(roles), "lockmix", func(i int) []string {
				return []string{path, "mix", roles[i], strconv.Itoa(n), strconv.Itoa(i)}
			})
			for _, c := range cs {
				c.Wait(t)
			}
			v := make([]byte, mixValueSize)
			noErr(t, "lookup", m.Lookup(key32(5), v, maps.FlagLock))
			if a, b := mixPair(v); a != b {
				t.Errorf("final value a = %d, b = %d", a, b)
			}
		})
	}
}

// TestWithLockErrors: the single-process contract of WithLock.
func TestWithLockErrors(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, lockedSpec("wl", maps.Hash, 16))
	plain := createMap(t, r, maps.Spec{Name: "plain", Type: maps.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 8})
	noErr(t, "update", plain.Update(key32(1), make([]byte, 16), maps.UpdateAny))
	nop := func([]byte) error { return nil }

	wantErr(t, "WithLock of a missing key", m.WithLock(key32(1), nop), maps.ErrKeyNotExist, syscall.ENOENT)
	wantErr(t, "WithLock on a map without a lock", plain.WithLock(key32(1), nop), maps.ErrInvalid, syscall.EINVAL)
	wantErr(t, "WithLock with a short key", m.WithLock([]byte{1}, nop), maps.ErrInvalid, syscall.EINVAL)

	noErr(t, "update", m.Update(key32(1), make([]byte, 16), maps.UpdateAny))
	var seen int
	noErr(t, "WithLock", m.WithLock(key32(1), func(v []byte) error {
		seen = len(v)
		binary.NativeEndian.PutUint64(v[8:], 42)
		return nil
	}))
	if seen != 16 {
		t.Errorf("WithLock gave %d bytes, want the 16-byte value", seen)
	}
	boom := errors.New("boom")
	if err := m.WithLock(key32(1), func([]byte) error { return boom }); err != boom {
		t.Errorf("WithLock returned %v, want fn's error", err)
	}
	// The lock was released after the error: a FlagLock lookup gets it.
	v := make([]byte, 16)
	noErr(t, "lookup", m.Lookup(key32(1), v, maps.FlagLock))
	if got := binary.NativeEndian.Uint64(v[8:]); got != 42 {
		t.Errorf("value after WithLock = %d, want 42", got)
	}
	// Updates never write the lock word, whatever the caller passes.
	for i := range v {
		v[i] = 0xff
	}
	noErr(t, "update", m.Update(key32(1), v, maps.UpdateExist|maps.FlagLock))
	noErr(t, "update", m.Update(key32(1), v, maps.UpdateExist))
	noErr(t, "WithLock after an update with 0xff in the lock bytes", m.WithLock(key32(1), nop))
	noErr(t, "lookup", m.Lookup(key32(1), v, 0))
	if w := binary.NativeEndian.Uint32(v); w != 0 {
		t.Errorf("lock word reads %#x, want 0", w)
	}
	if n := r.Stats().Counters["spin_lock_recoveries"]; n != 0 {
		t.Errorf("%d lock recoveries: an update wrote the lock word", n)
	}
	wantErr(t, "FlagLock lookup on a map without a lock", plain.Lookup(key32(1), v, maps.FlagLock), maps.ErrInvalid, syscall.EINVAL)
	wantErr(t, "FlagLock update on a map without a lock", plain.Update(key32(1), v, maps.FlagLock), maps.ErrInvalid, syscall.EINVAL)
}
