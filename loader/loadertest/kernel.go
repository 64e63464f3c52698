package loadertest

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// ErrNoKernel says bpf(2) cannot load programs here (not root, seccomp, no
// BPF support): kernel tests skip on it.
var ErrNoKernel = errors.New("bpf(2) cannot load programs here")

// contextIn is the packet a tc program's BPF_PROG_TEST_RUN needs (at
// least an Ethernet header); the programs never read it.
var contextIn = make([]byte, 64)

// KernelAvailable reports whether the kernel can run the scenarios, with
// the reason when it cannot.
func KernelAvailable() error {
	spec, err := ebpf.LoadCollectionSpec(Path("legacy.o"))
	if err != nil {
		return err
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoKernel, err)
	}
	coll.Close()
	return nil
}

// RunKernel plays a scenario on the real kernel: loads the object (a fresh
// collection), runs the steps with BPF_PROG_TEST_RUN and dumps the maps.
func RunKernel(s Scenario) (*Result, error) {
	obj := s.Object
	if s.KernelObject != "" {
		obj = s.KernelObject
	}
	spec, err := ebpf.LoadCollectionSpec(Path(obj))
	if err != nil {
		return nil, err
	}
	for name, v := range s.Constants {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("%s: no variable %s", obj, name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("%s: set %s: %w", obj, name, err)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj, err)
	}
	defer coll.Close()
	prog := coll.Programs[s.Program]
	if prog == nil {
		return nil, fmt.Errorf("%s: no program %s", obj, s.Program)
	}
	res := &Result{}
	for _, st := range s.Steps {
		if st.Run == 0 {
			m := coll.Maps[st.Map]
			if m == nil {
				return nil, fmt.Errorf("%s: no map %s", obj, st.Map)
			}
			if err := m.Update(st.Key, st.Value, ebpf.UpdateAny); err != nil {
				return nil, fmt.Errorf("%s: update %s: %w", obj, st.Map, err)
			}
			continue
		}
		for i := 0; i < st.Run; i++ {
			ret, err := prog.Run(&ebpf.RunOptions{Data: contextIn})
			if err != nil {
				return nil, fmt.Errorf("%s: run %s: %w", obj, s.Program, err)
			}
			res.Returns = append(res.Returns, ret)
		}
	}
	for _, name := range s.Dump {
		m := coll.Maps[name]
		if m == nil {
			return nil, fmt.Errorf("%s: no map %s", obj, name)
		}
		if m.Type() == ebpf.RingBuf {
			recs, err := drainRing(m)
			if err != nil {
				return nil, fmt.Errorf("%s: ring %s: %w", obj, name, err)
			}
			if res.Rings == nil {
				res.Rings = map[string][][]byte{}
			}
			res.Rings[name] = recs
			continue
		}
		var dump []Entry
		var k, v []byte
		it := m.Iterate()
		for it.Next(&k, &v) {
			dump = append(dump, Entry{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("%s: dump %s: %w", obj, name, err)
		}
		SortEntries(dump)
		if res.Maps == nil {
			res.Maps = map[string][]Entry{}
		}
		res.Maps[name] = dump
	}
	return res, nil
}

// drainRing reads every record a ring buffer holds.
func drainRing(m *ebpf.Map) ([][]byte, error) {
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	rd.SetDeadline(time.Now())
	recs := [][]byte{}
	for {
		rec, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ringbuf.ErrFlushed) {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec.RawSample)
	}
}
