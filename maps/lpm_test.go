package maps_test

// LPM_TRIE: longest-prefix match against a reference matcher (the kernel's
// lpm_trie_map_basic_ops), iteration order rules, capacity, memory given
// back, and readers in several processes while writers change the trie
// (and are killed while doing it).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

func lpmSpec(name string, dataSize, valueSize, max uint32) maps.Spec {
	return maps.Spec{Name: name, Type: maps.LPMTrie, KeySize: 4 + dataSize, ValueSize: valueSize, MaxEntries: max,
		Flags: maps.FlagNoPrealloc}
}

// lpmKey is prefixlen followed by data.
func lpmKey(prefixlen uint32, data []byte) []byte {
	return append(binary.NativeEndian.AppendUint32(nil, prefixlen), data...)
}

// prefixMatch says whether the first n bits of a and b agree.
func prefixMatch(a, b []byte, n uint32) bool {
	for i := uint32(0); i < n; i++ {
		if (a[i/8]>>(7-i%8))&1 != (b[i/8]>>(7-i%8))&1 {
			return false
		}
	}
	return true
}

// refTrie is the reference matcher: a list of prefixes.
type refTrie struct {
	prefixes map[string][]byte // canonical "len/masked data" → value
	keys     map[string][]byte // the same → the key as last stored
}

func canon(key []byte) string {
	n := binary.NativeEndian.Uint32(key)
	d := append([]byte(nil), key[4:]...)
	for i := n; i < uint32(8*len(d)); i++ {
		d[i/8] &^= 0x80 >> (i % 8)
	}
	return fmt.Sprintf("%d/%x", n, d)
}

func (r *refTrie) lookup(key []byte) ([]byte, bool) {
	kl := binary.NativeEndian.Uint32(key)
	best, bestLen := []byte(nil), -1
	for c, k := range r.keys {
		l := binary.NativeEndian.Uint32(k)
		if l <= kl && int(l) > bestLen && prefixMatch(k[4:], key[4:], l) {
			best, bestLen = r.prefixes[c], int(l)
		}
	}
	return best, bestLen >= 0
}

func TestLPMAgainstReference(t *testing.T) {
	r, _ := newRegion(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	for _, dataSize := range []uint32{1, 4, 16} {
		const max = 200
		m := createMap(t, r, lpmSpec(fmt.Sprintf("ref%d", dataSize), dataSize, 8, max))
		ref := &refTrie{prefixes: map[string][]byte{}, keys: map[string][]byte{}}
		maxLen := 8 * dataSize
		base := make([]byte, dataSize)
		randKey := func() []byte {
			d := append([]byte(nil), base...)
			for range 1 + rng.IntN(4) { // near one another: long shared prefixes
				b := rng.IntN(int(maxLen))
				d[b/8] ^= 0x80 >> (b % 8)
			}
			return lpmKey(uint32(rng.IntN(int(maxLen)+1)), d)
		}
		got := make([]byte, 8)
		for step := range scaled(6000, 2000) {
			k := randKey()
			c := canon(k)
			_, present := ref.prefixes[c]
			switch op := rng.IntN(10); {
			case op < 4:
				v := binary.LittleEndian.AppendUint64(nil, rng.Uint64())
				err := m.Update(k, v, maps.UpdateAny)
				switch {
				case !present && len(ref.prefixes) == max:
					wantErr(t, "insert into a full trie", err, maps.ErrNoSpace, syscall.ENOSPC)
				case err != nil:
					t.Fatalf("step %d: update %x: %v", step, k, err)
				default:
					ref.prefixes[c], ref.keys[c] = v, k
				}
			case op < 6:
				err := m.Delete(k)
				if present != (err == nil) || !present && !errors.Is(err, maps.ErrKeyNotExist) {
					t.Fatalf("step %d: delete %x (present %v): %v", step, k, present, err)
				}
				delete(ref.prefixes, c)
				delete(ref.keys, c)
			default:
				k := lpmKey(maxLen, k[4:]) // full-length lookups, as programs do
				if rng.IntN(4) == 0 {
					k = randKey()
				}
				want, ok := ref.lookup(k)
				err := m.Lookup(k, got, 0)
				if ok != (err == nil) || ok && string(got) != string(want) {
					t.Fatalf("step %d: lookup %x = %x, %v; want %x, %v", step, k, got, err, want, ok)
				}
			}
			if m.Count() != int64(len(ref.prefixes)) {
				t.Fatalf("step %d: Count() = %d, reference %d", step, m.Count(), len(ref.prefixes))
			}
		}
		checkLPMWalk(t, m, ref)
	}
}

// checkLPMWalk: the walk yields every stored key once (as last stored,
// bits past the prefix included), each more specific prefix before every
// prefix that contains it.
func checkLPMWalk(t *testing.T, m *maps.Map, ref *refTrie) {
	t.Helper()
	keys, err := walk(m, 2*len(ref.keys)+2)
	noErr(t, "walk", err)
	if len(keys) != len(ref.keys) {
		t.Fatalf("walk yields %d keys, the trie holds %d", len(keys), len(ref.keys))
	}
	for i, k := range keys {
		if want, ok := ref.keys[canon(k)]; !ok || string(want) != string(k) {
			t.Fatalf("walk yields %x, stored as %x", k, want)
		}
		for _, later := range keys[i+1:] {
			kl, ll := binary.NativeEndian.Uint32(k), binary.NativeEndian.Uint32(later)
			if ll > kl && prefixMatch(k[4:], later[4:], kl) {
				t.Fatalf("walk yields %x before %x, which it contains", k, later)
			}
		}
	}
}

func TestLPMErrors(t *testing.T) {
	r, _ := newRegion(t)
	for i, c := range []struct {
		spec maps.Spec
		ok   bool
	}{
		{lpmSpec("", 4, 8, 1), true},
		{lpmSpec("", 1, 1, 1), true},
		{lpmSpec("", 256, 8, 1), true},
		{lpmSpec("", 257, 8, 1), false},
		{lpmSpec("", 0, 8, 1), false},
		{lpmSpec("", 4, 0, 1), false},
		{lpmSpec("", 4, 8, 0), false},
		{lpmSpec("", 4, 4<<20-256-24, 1), true},
		{lpmSpec("", 4, 4<<20-256-24+1, 1), false},
		{maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 1}, false}, // no BPF_F_NO_PREALLOC
		{maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 1, Flags: maps.FlagNoPrealloc | maps.FlagZeroSeed}, false},
		{maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 1, Flags: maps.FlagNoPrealloc, MapExtra: 1}, false},
	} {
		c.spec.Name = fmt.Sprintf("e%d", i)
		_, err := r.CreateMap(c.spec)
		if c.ok {
			noErr(t, "create "+c.spec.String(), err)
		} else {
			wantErr(t, "create "+c.spec.String(), err, maps.ErrInvalid, syscall.EINVAL)
		}
	}
	_, err := r.CreateMap(maps.Spec{Name: "lk", Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 1, Flags: maps.FlagNoPrealloc, HasLock: true})
	wantErr(t, "create with a bpf_spin_lock", err, maps.ErrOpNotSupported, syscall.EOPNOTSUPP)

	m := createMap(t, r, lpmSpec("ops", 4, 8, 2))
	v := make([]byte, 8)
	k := lpmKey(24, []byte{10, 0, 0, 0})
	wantErr(t, "EXIST on an absent prefix", m.Update(k, v, maps.UpdateExist), maps.ErrKeyNotExist, syscall.ENOENT)
	noErr(t, "insert", m.Update(k, v, maps.UpdateNoExist))
	wantErr(t, "NOEXIST on a present prefix", m.Update(k, v, maps.UpdateNoExist), maps.ErrKeyExist, syscall.EEXIST)
	wantErr(t, "update flags 3", m.Update(k, v, 3), maps.ErrInvalid, syscall.EINVAL)
	wantErr(t, "update prefixlen 33", m.Update(lpmKey(33, []byte{10, 0, 0, 0}), v, 0), maps.ErrInvalid, syscall.EINVAL)
	wantErr(t, "delete prefixlen 33", m.Delete(lpmKey(33, []byte{10, 0, 0, 0})), maps.ErrInvalid, syscall.EINVAL)
	wantErr(t, "lookup prefixlen 33", m.Lookup(lpmKey(33, []byte{10, 0, 0, 0}), v, 0), maps.ErrKeyNotExist, syscall.ENOENT)
	wantErr(t, "delete a missing prefix", m.Delete(lpmKey(16, []byte{10, 0, 0, 0})), maps.ErrKeyNotExist, syscall.ENOENT)
	noErr(t, "insert /25", m.Update(lpmKey(25, []byte{10, 0, 0, 0}), v, 0))
	wantErr(t, "a third prefix", m.Update(lpmKey(8, []byte{10, 0, 0, 0}), v, 0), maps.ErrNoSpace, syscall.ENOSPC)
	noErr(t, "replace in a full trie", m.Update(k, v, maps.UpdateExist))
	wantErr(t, "lookup and delete", m.LookupAndDelete(k, v, 0), maps.ErrNotSupported, syscall.Errno(524))
	noErr(t, "View", m.View(lpmKey(32, []byte{10, 0, 0, 1}), func([]byte) {}))
	_, err = m.LookupAndDeleteBatch(nil, make([]byte, 8), make([]byte, 8), v, 0, 0)
	wantErr(t, "lookup and delete batch", err, maps.ErrNotSupported, syscall.Errno(524))
	n, err := m.DeleteBatch(append(append([]byte(nil), k...), k...), 0)
	if n != 1 || !errors.Is(err, maps.ErrKeyNotExist) {
		t.Errorf("delete batch of a key twice: %d, %v; want 1, ENOENT", n, err)
	}
	if m.Count() != 1 {
		t.Errorf("Count() = %d after the batch, want 1", m.Count())
	}
}

// TestLPMGivesMemoryBack: nodes (intermediate ones too) return to the
// region a grace period after they are unlinked.
func TestLPMGivesMemoryBack(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, lpmSpec("mem", 4, 64, 1000))
	v := make([]byte, 64)
	// Warm up: the first retired block gives this process its retire ring.
	noErr(t, "insert", m.Update(lpmKey(8, []byte{1, 0, 0, 0}), v, 0))
	noErr(t, "delete", m.Delete(lpmKey(8, []byte{1, 0, 0, 0})))
	r.RCU().Barrier()
	base := usedBytes(t, r)
	for round := range 3 {
		var keys [][]byte
		for i := range 1000 {
			k := lpmKey(uint32(16+i%17), binary.BigEndian.AppendUint32(nil, uint32(i)*2654435761))
			if err := m.Update(k, v, maps.UpdateNoExist); err == nil {
				keys = append(keys, k)
			}
		}
		if usedBytes(t, r) <= base {
			t.Fatalf("round %d: %d prefixes took no memory", round, len(keys))
		}
		for _, k := range keys {
			noErr(t, "delete", m.Delete(k))
		}
		if m.Count() != 0 {
			t.Fatalf("Count() = %d after deleting everything", m.Count())
		}
		r.RCU().Barrier()
		if used := usedBytes(t, r); used != base {
			t.Fatalf("round %d: %d bytes in use after deleting everything, %d before", round, used, base)
		}
	}
}

// Multi-process: stable prefixes (10.s.0.0/16 → value pattern(s, gen)),
// rewritten in place by writers (new generations), and churn prefixes
// (20.x.y.0/24) inserted and deleted. Readers look up addresses under the
// stable prefixes and walk the trie; a lookup must always find its /16
// with an untorn value, and a walk must always yield every stable prefix.
const (
	lpmStable = 16
	lpmMax    = 200
)

func stableKey(s int) []byte { return lpmKey(16, []byte{10, byte(s), 0, 0}) }

// lpmWriter: path name id — rewrite the stable prefixes and churn its own
// /24s, saying "tick" after each round, until told "stop" (or killed).
var _ = proctest.Register("lpm-writer", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	id, _ := strconv.Atoi(args[2])
	proctest.Ready("ready")
	awaitLine()
	var stop atomic.Bool
	go func() { awaitLine(); stop.Store(true) }()
	v := make([]byte, patternSize)
	for round := 0; !stop.Load(); round++ {
		for s := range lpmStable {
			putPattern(v, uint64(s), uint32(round))
			if err := m.Update(stableKey(s), v, maps.UpdateExist); err != nil {
				return fmt.Errorf("rewrite stable prefix %d: %v", s, err)
			}
		}
		for i := range 20 {
			k := lpmKey(24, []byte{20, byte(id), byte(i), 0})
			putPattern(v, uint64(1000+i), uint32(round))
			if err := m.Update(k, v, maps.UpdateNoExist); err != nil {
				return fmt.Errorf("insert churn prefix: %v", err)
			}
		}
		for i := range 20 {
			if err := m.Delete(lpmKey(24, []byte{20, byte(id), byte(i), 0})); err != nil {
				return fmt.Errorf("delete churn prefix: %v", err)
			}
		}
		proctest.Ready("tick")
	}
	proctest.Ready("stopped")
	return nil
})

// lpmReader: path name rounds — lookups and walks (see above).
var _ = proctest.Register("lpm-reader", func(args []string) error {
	r, m, err := openChild(args[0], args[1], maps.FlagRdOnly)
	if err != nil {
		return err
	}
	defer r.Close()
	rounds, _ := strconv.Atoi(args[2])
	proctest.Ready("ready")
	awaitLine()
	got := make([]byte, patternSize)
	for round := range rounds {
		for s := range lpmStable {
			addr := lpmKey(32, []byte{10, byte(s), byte(round), byte(s * 7)})
			if err := m.Lookup(addr, got, 0); err != nil {
				return fmt.Errorf("lookup %x: %v", addr, err)
			}
			if _, err := checkPattern(got, uint64(s)); err != nil {
				return fmt.Errorf("lookup %x: %v", addr, err)
			}
		}
		keys, err := walkBounded(m, 4*lpmMax)
		if err != nil {
			return err
		}
		seen := 0
		for _, k := range keys {
			if k[4] == 10 {
				seen++
			}
		}
		if seen < lpmStable {
			return fmt.Errorf("a walk yielded %d of the %d stable prefixes", seen, lpmStable)
		}
	}
	return nil
})

// walkBounded walks while others change the trie: a deleted cursor
// restarts the walk (duplicates are possible), so it stops after limit
// steps or at the end, and returns the distinct stable prefixes it saw.
// Those sort before every churn prefix (10 < 20), and stable prefixes are
// replaced but never deleted, so they all come before any restart can.
func walkBounded(m *maps.Map, limit int) ([][]byte, error) {
	var keys [][]byte
	var cur []byte
	stable := map[string]bool{}
	for steps := 0; steps < limit; steps++ {
		next := make([]byte, m.KeySize())
		err := m.NextKey(cur, next)
		if errors.Is(err, maps.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("next key after %x: %v", cur, err)
		}
		if next[4] == 10 && !stable[string(next)] {
			stable[string(next)] = true
			keys = append(keys, next)
		}
		cur = next
	}
	return keys, nil
}

func TestLPMManyProcesses(t *testing.T) {
	r, path := newRegion(t)
	m := createMap(t, r, lpmSpec("mpl", 4, patternSize, lpmMax))
	v := make([]byte, patternSize)
	for s := range lpmStable {
		putPattern(v, uint64(s), 0)
		noErr(t, "insert stable prefix", m.Update(stableKey(s), v, maps.UpdateNoExist))
	}
	// The writers run until both readers are done.
	rounds := scaled(400, 100)
	writers := []*child{startChild(t, "lpm-writer", path, "mpl", "0"), startChild(t, "lpm-writer", path, "mpl", "1")}
	readers := []*child{startChild(t, "lpm-reader", path, "mpl", strconv.Itoa(rounds)), startChild(t, "lpm-reader", path, "mpl", strconv.Itoa(rounds))}
	for _, c := range append(writers, readers...) {
		c.Expect(t, "ready")
	}
	for _, c := range append(writers, readers...) {
		c.tell(t, "go")
	}
	for _, c := range writers {
		c.Expect(t, "tick") // writing before the readers end
	}
	for _, c := range readers {
		c.Wait(t)
	}
	for _, c := range writers {
		c.tell(t, "stop")
		for l := c.Line(t); l != "stopped"; l = c.Line(t) {
		}
		c.Wait(t)
	}
	keys, err := walk(m, 4*lpmMax)
	noErr(t, "final walk", err)
	if len(keys) != lpmStable || m.Count() != lpmStable {
		t.Fatalf("after the writers: %d keys walked, Count() = %d, want %d", len(keys), m.Count(), lpmStable)
	}
}

// TestLPMKilledWriters kills writers in the middle of their work, perhaps
// holding the trie's lock between changing the count and linking a node:
// the trie stays well formed (every stable prefix found, untorn), and once
// someone has taken the lock again the count equals the prefixes walked.
func TestLPMKilledWriters(t *testing.T) {
	r, path := newRegion(t)
	m := createMap(t, r, lpmSpec("kl", 4, patternSize, lpmMax))
	v := make([]byte, patternSize)
	for s := range lpmStable {
		putPattern(v, uint64(s), 0)
		noErr(t, "insert stable prefix", m.Update(stableKey(s), v, maps.UpdateNoExist))
	}
	got := make([]byte, patternSize)
	for i := range scaled(8, 4) {
		c := startChild(t, "lpm-writer", path, "kl", strconv.Itoa(i))
		c.Expect(t, "ready")
		c.tell(t, "go")
		for range 1 + i%3 {
			c.Expect(t, "tick")
		}
		c.Kill(t)
		for s := range lpmStable {
			noErr(t, "lookup after a kill", m.Lookup(lpmKey(32, []byte{10, byte(s), 1, 2}), got, 0))
			if _, err := checkPattern(got, uint64(s)); err != nil {
				t.Fatal(err)
			}
		}
		// Take the lock (recovering it if the victim held it), then count.
		noErr(t, "rewrite after a kill", m.Update(stableKey(0), got, maps.UpdateExist))
		keys, err := walk(m, 4*lpmMax)
		noErr(t, "walk after a kill", err)
		if int64(len(keys)) != m.Count() {
			t.Fatalf("kill %d: %d prefixes walked, Count() = %d", i, len(keys), m.Count())
		}
		// Remove what the victim left, for the next round.
		for _, k := range keys {
			if k[4] == 20 {
				noErr(t, "delete a victim's prefix", m.Delete(k))
			}
		}
	}
	if n := m.Count(); n != lpmStable {
		t.Fatalf("Count() = %d at the end, want %d", n, lpmStable)
	}
}
