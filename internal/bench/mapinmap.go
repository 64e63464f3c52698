package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/maps"
)

// MapInMap measures the double-buffer flip: swapping the inner map in an
// ARRAY_OF_MAPS slot and knowing that no reader still uses the old one.
// userbpf: an update plus Region.Synchronize (and the opt-in
// FlagWaitGrace update); the kernel: BPF_MAP_UPDATE_ELEM on an outer map,
// which returns after a synchronize_rcu.
func MapInMap(env *Env) ([]Result, error) {
	path := filepath.Join(env.Dir, fmt.Sprintf("bench-mim-%d", os.Getpid()))
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20})
	if err != nil {
		return nil, err
	}
	defer userbpf.RemoveRegion(path, true)
	defer r.Close()
	var res []Result
	add := func(x Result) { x.Suite = "mapinmap"; res = append(res, x) }

	a, err := r.CreateMap(maps.Spec{Name: "a", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, err
	}
	b, err := r.CreateMap(maps.Spec{Name: "b", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, err
	}
	outer, err := r.CreateMap(maps.Spec{Name: "outer", Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: a})
	if err != nil {
		return nil, err
	}
	key := []byte{0, 0, 0, 0}
	ids := [2][]byte{make([]byte, 4), make([]byte, 4)}
	binary.NativeEndian.PutUint32(ids[0], a.ID())
	binary.NativeEndian.PutUint32(ids[1], b.ID())
	i := 0
	flip := func(flags uint64) {
		i ^= 1
		outer.Update(key, ids[i], flags)
	}

	env.say("flip + Synchronize")
	oursP50, oursP99 := latencies(20000, func() { flip(maps.UpdateAny); r.Synchronize() })
	waitP50, _ := latencies(20000, func() { flip(maps.FlagWaitGrace) })
	manyP50, _ := latencies(2000, func() {
		for range 100 {
			flip(maps.UpdateAny)
		}
		r.Synchronize()
	})

	env.say("kernel outer-map update")
	kernP50, note := kernelFlip()
	x := Result{Name: "flip_synchronize_p50", Unit: "ns", Value: oursP50, Kernel: kernP50, Note: note,
		Target: ">= 500x faster than the kernel's outer-map update"}
	if kernP50 > 0 {
		x.Ratio = kernP50 / oursP50
	}
	add(x)
	add(Result{Name: "flip_synchronize_p99", Unit: "ns", Value: oursP99})
	y := Result{Name: "flip_flag_wait_grace_p50", Unit: "ns", Value: waitP50, Kernel: kernP50, Note: "one update that waits, like the kernel's"}
	if kernP50 > 0 {
		y.Ratio = kernP50 / waitP50
	}
	add(y)
	add(Result{Name: "100_flips_one_synchronize_p50", Unit: "ns", Value: manyP50, Note: "one grace period covers any number of flips"})
	return res, nil
}

// kernelFlip times BPF_MAP_UPDATE_ELEM on a kernel ARRAY_OF_MAPS slot,
// alternating two inner maps.
func kernelFlip() (float64, string) {
	inner := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
	a, err := ebpf.NewMap(inner)
	if err != nil {
		return 0, "kernel maps unavailable: " + err.Error()
	}
	defer a.Close()
	b, err := ebpf.NewMap(inner)
	if err != nil {
		return 0, err.Error()
	}
	defer b.Close()
	outer, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: inner})
	if err != nil {
		return 0, err.Error()
	}
	defer outer.Close()
	fds := [2]uint32{uint32(a.FD()), uint32(b.FD())}
	i := 0
	p50, _ := latencies(40, func() {
		i ^= 1
		outer.Update(uint32(0), fds[i], ebpf.UpdateAny)
	})
	return p50, ""
}
