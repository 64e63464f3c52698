package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/maps"
)

const benchEntries = 64 << 10

// Maps measures map commands from an attached process against the same
// commands on kernel maps through bpf(2), in the same run: HASH (4-byte
// key, 8-byte value, 64 K entries) lookup and update, ARRAY lookup,
// allocations per operation, two processes incrementing one locked value,
// and memory per preallocated hash element.
func Maps(env *Env) ([]Result, error) {
	path := filepath.Join(env.Dir, fmt.Sprintf("bench-maps-%d", os.Getpid()))
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 1 << 30})
	if err != nil {
		return nil, err
	}
	defer userbpf.RemoveRegion(path, true)
	defer r.Close()
	var res []Result
	add := func(x Result) { x.Suite = "maps"; res = append(res, x) }

	hash, err := r.CreateMap(maps.Spec{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: benchEntries})
	if err != nil {
		return nil, err
	}
	arr, err := r.CreateMap(maps.Spec{Name: "a", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: benchEntries})
	if err != nil {
		return nil, err
	}
	kh, kerr := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: benchEntries})
	var ka *ebpf.Map
	if kerr == nil {
		defer kh.Close()
		ka, kerr = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: benchEntries})
	}
	note := ""
	if kerr != nil {
		note = "kernel maps unavailable: " + kerr.Error()
	} else {
		defer ka.Close()
	}
	keys := shuffledKeys(benchEntries)
	k := make([]byte, 4)
	v := make([]byte, 8)
	for i := uint32(0); i < benchEntries; i++ {
		binary.NativeEndian.PutUint32(k, i)
		binary.NativeEndian.PutUint64(v, uint64(i))
		if err := hash.Update(k, v, maps.UpdateAny); err != nil {
			return nil, err
		}
		if kerr == nil {
			if err := kh.Update(k, v, ebpf.UpdateAny); err != nil {
				return nil, err
			}
		}
	}
	loop := func(op func(key []byte) error) func(n int) {
		return func(n int) {
			for i := range n {
				binary.NativeEndian.PutUint32(k, keys[i%len(keys)])
				op(k)
			}
		}
	}
	compare := func(name, target string, ours, theirs func(key []byte) error) {
		env.say(name)
		x := Result{Name: name, Unit: "ns/op", Target: target, Note: note,
			Value: perOp(5, loop(ours))}
		if kerr == nil {
			x.Kernel = perOp(5, loop(theirs))
			x.Ratio = x.Kernel / x.Value
		}
		add(x)
	}
	compare("hash_lookup", ">= 20x faster than the kernel",
		func(key []byte) error { return hash.Lookup(key, v, 0) },
		func(key []byte) error { return kh.Lookup(key, v) })
	hot := keys
	keys = keys[:256] // a working set that stays in cache, on both sides
	compare("hash_lookup_hot_256_keys", "",
		func(key []byte) error { return hash.Lookup(key, v, 0) },
		func(key []byte) error { return kh.Lookup(key, v) })
	keys = hot
	compare("hash_update", ">= 15x faster than the kernel",
		func(key []byte) error { return hash.Update(key, v, maps.UpdateAny) },
		func(key []byte) error { return kh.Update(key, v, ebpf.UpdateAny) })
	compare("array_lookup", ">= 40x faster than the kernel",
		func(key []byte) error { return arr.Lookup(key, v, 0) },
		func(key []byte) error { return ka.Lookup(key, v) })

	env.say("allocations per operation")
	typed, err := userbpf.NewTypedMap[uint32, uint64](hash)
	if err != nil {
		return nil, err
	}
	add(Result{Name: "allocs_typed_lookup_update", Unit: "allocs/op", Target: "0",
		Value: allocsPerOp(func(i int) {
			typed.Lookup(keys[i%len(keys)])
			typed.Update(keys[i%len(keys)], uint64(i), maps.UpdateAny)
		})})
	add(Result{Name: "allocs_raw_lookup_update", Unit: "allocs/op", Target: "0",
		Value: allocsPerOp(func(i int) {
			binary.NativeEndian.PutUint32(k, keys[i%len(keys)])
			hash.Lookup(k, v, 0)
			hash.Update(k, v, maps.UpdateAny)
		})})

	env.say("locked value, two processes")
	ops, err := lockedTwoProcs(env, r)
	if err != nil {
		return nil, err
	}
	add(Result{Name: "locked_increment_two_processes", Unit: "M ops/s", Value: ops / 1e6,
		Target: "no lost update", Note: "HASH value with a bpf_spin_lock, m.WithLock in both processes; counter exact"})

	ours := float64(hash.Storage()) / benchEntries
	mem := Result{Name: "bytes_per_hash_element", Unit: "B", Value: ours, Target: "within 1.5x of the kernel's memlock", Note: note}
	if kerr == nil {
		if ml, err := memlock(kh); err == nil {
			mem.Kernel = float64(ml) / benchEntries
			mem.Ratio = mem.Kernel / ours
			mem.Note = "ratio > 1: userbpf uses less"
		}
	}
	add(mem)
	return res, nil
}

// shuffledKeys returns 0..n-1 in a fixed pseudo-random order, so both
// implementations see the same cache-unfriendly access pattern.
func shuffledKeys(n int) []uint32 {
	ks := make([]uint32, n)
	x := uint32(2463534242)
	for i := range ks {
		ks[i] = uint32(i)
	}
	for i := n - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		j := int(x % uint32(i+1))
		ks[i], ks[j] = ks[j], ks[i]
	}
	return ks
}

func allocsPerOp(fn func(i int)) float64 {
	const n = 10000
	fn(0)
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for i := range n {
		fn(i)
	}
	runtime.ReadMemStats(&b)
	return float64(b.Mallocs-a.Mallocs) / n
}

// memlock reads the kernel's memory accounting for a map from fdinfo.
func memlock(m *ebpf.Map) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", m.FD()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "memlock:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no memlock line in fdinfo")
}

// lockedTwoProcs has a child process and this one increment the counter in
// one HASH value under its bpf_spin_lock for a fixed time and returns the
// total increments per second; a lost update is an error.
func lockedTwoProcs(env *Env, r *userbpf.Region) (float64, error) {
	m, err := r.CreateMap(maps.Spec{Name: "locked", Type: maps.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 4, HasLock: true})
	if err != nil {
		return 0, err
	}
	key := []byte{0, 0, 0, 0}
	if err := m.Update(key, make([]byte, 16), maps.UpdateAny); err != nil {
		return 0, err
	}
	cmd := env.Child("maplock", r.Shared().Path())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		return 0, fmt.Errorf("bench child did not start")
	}
	fmt.Fprintln(stdin, "go")
	start := time.Now()
	mine := incrementLocked(m, time.Now().Add(500*time.Millisecond))
	el := time.Since(start)
	if !sc.Scan() {
		return 0, fmt.Errorf("bench child did not report")
	}
	theirs, _ := strconv.ParseUint(sc.Text(), 10, 64)
	v := make([]byte, 16)
	if err := m.Lookup(key, v, maps.FlagLock); err != nil {
		return 0, err
	}
	if got := binary.NativeEndian.Uint64(v[8:]); got != mine+theirs {
		return 0, fmt.Errorf("lost updates under the value lock: counter %d, want %d", got, mine+theirs)
	}
	return float64(mine+theirs) / el.Seconds(), nil
}

func incrementLocked(m *maps.Map, until time.Time) uint64 {
	key := []byte{0, 0, 0, 0}
	n := uint64(0)
	inc := func(v []byte) error {
		binary.NativeEndian.PutUint64(v[8:], binary.NativeEndian.Uint64(v[8:])+1)
		return nil
	}
	for n%1024 != 0 || time.Now().Before(until) {
		if m.WithLock(key, inc) == nil {
			n++
		}
	}
	return n
}

func runMapLockChild(path string) error {
	r, err := userbpf.OpenRegion(path)
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := r.OpenMap("locked", 0)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	if !bufio.NewScanner(os.Stdin).Scan() {
		return fmt.Errorf("bench child: no go signal")
	}
	fmt.Println(incrementLocked(m, time.Now().Add(500*time.Millisecond)))
	return nil
}
