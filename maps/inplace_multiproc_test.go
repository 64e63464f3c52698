package maps_test

// One-word HASH values are updated in place (no new element): several
// real processes overwrite the same keys, which share buckets, while
// looking them up. No lookup of a key may miss (nothing is unlinked), no
// value may be torn, the count never moves, and each key ends with a
// value one of the writers stored last.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

const (
	inPlaceKeys  = 96 // in 128 buckets: many share one
	inPlaceProcs = 3
)

// inPlaceWord is what writer id stores in round r: the same 32 bits
// twice, so a torn read shows.
func inPlaceWord(id, r int) uint64 {
	w := uint64(id)<<24 | uint64(r)
	return w<<32 | w
}

// inplace: path name id rounds — overwrite every key each round and look
// every key up.
var _ = proctest.Register("inplace", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	id, _ := strconv.Atoi(args[2])
	rounds, _ := strconv.Atoi(args[3])
	proctest.Ready("ready")
	awaitLine()
	return overwrite(m, id, rounds)
})

func overwrite(m *maps.Map, id, rounds int) error {
	v, got := make([]byte, 8), make([]byte, 8)
	for round := 1; round <= rounds; round++ {
		binary.NativeEndian.PutUint64(v, inPlaceWord(id, round))
		for k := range uint32(inPlaceKeys) {
			if err := m.Update(key32(k), v, maps.UpdateExist); err != nil {
				return fmt.Errorf("round %d: update key %d: %v", round, k, err)
			}
			err := m.Lookup(key32((k*7+uint32(round))%inPlaceKeys), got, 0)
			if errors.Is(err, maps.ErrKeyNotExist) {
				return fmt.Errorf("round %d: a lookup missed a key that was never deleted", round)
			}
			if err != nil {
				return err
			}
			if w := binary.NativeEndian.Uint64(got); w>>32 != w&0xffffffff {
				return fmt.Errorf("round %d: torn value %#x", round, w)
			}
		}
		if c := m.Count(); c != inPlaceKeys {
			return fmt.Errorf("round %d: count %d, want %d", round, c, inPlaceKeys)
		}
	}
	return nil
}

func TestInPlaceUpdatesManyProcesses(t *testing.T) {
	r, path := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "inplace", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 128})
	for k := range uint32(inPlaceKeys) {
		noErr(t, "fill", m.Update(key32(k), make([]byte, 8), maps.UpdateNoExist))
	}
	rounds := scaled(2000, 200)
	cs := startAll(t, inPlaceProcs, "inplace", func(i int) []string {
		return []string{path, "inplace", strconv.Itoa(i), strconv.Itoa(rounds)}
	})
	for _, c := range cs {
		c.Wait(t)
	}
	got := make([]byte, 8)
	for k := range uint32(inPlaceKeys) {
		noErr(t, "lookup", m.Lookup(key32(k), got, 0))
		w := binary.NativeEndian.Uint64(got)
		if w != inPlaceWord(int(w>>56), rounds) || int(w>>56) >= inPlaceProcs {
			t.Errorf("key %d ends with %#x, not any writer's last value", k, w)
		}
	}
	if m.Count() != inPlaceKeys {
		t.Errorf("count %d, want %d", m.Count(), inPlaceKeys)
	}
}
