package loader_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/loader/loadertest"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/programs"
	"github.com/userbpf/userbpf/ringbuf"
)

// vmContext is the context our VM gets: the programs never read it (the
// kernel's run gets a 64-byte packet).
var vmContext = make([]byte, 64)

// runVM plays a scenario on our VM, through the host (package programs):
// the object is loaded under the scenario's name as prefix, the program
// stored in the region under the scenario's name and run from there. It
// returns the helpers and kfuncs the program needs that the host lacks
// (and no result) if any.
func runVM(r *userbpf.Region, s loadertest.Scenario) (*loadertest.Result, []string, error) {
	consts := map[string]any{}
	for k, v := range s.Constants {
		consts[k] = v
	}
	c, err := loader.LoadWithOptions(r, loadertest.Path(s.Object), &loader.Options{Prefix: s.Name + "_", Constants: consts})
	if err != nil {
		return nil, nil, err
	}
	lp := c.Programs[s.Program]
	if lp == nil {
		return nil, nil, fmt.Errorf("no program %s", s.Program)
	}
	var missing []string
	helpers := programs.Helpers()
	for _, fn := range lp.Spec.Helpers {
		if helpers.Get(int32(fn)) == nil {
			missing = append(missing, "helper "+fn.String())
		}
	}
	err = lp.ResolveKfuncs(func(name string) (int32, bool) {
		id, ok := programs.KfuncID(name)
		if !ok && !slices.Contains(missing, "kfunc "+name) {
			missing = append(missing, "kfunc "+name)
		}
		return id, true
	})
	if err != nil {
		return nil, nil, err
	}
	if len(missing) > 0 {
		return nil, missing, nil
	}
	stored := make([]programs.StoredMap, len(lp.VM.Maps))
	for i, ref := range lp.VM.Maps {
		stored[i] = programs.StoredMap{Name: ref.Handle.(*maps.Map).Name(), GlobalData: ref.ValueAddr != 0, ReadOnly: ref.ReadOnly}
	}
	if err := programs.Store(r.Shared(), s.Name, uint32(lp.Spec.Type), lp.VM.Insns, stored); err != nil {
		return nil, nil, err
	}
	p, err := programs.Open(r.Shared(), r.RCU(), s.Name)
	if err != nil {
		return nil, nil, err
	}
	res := &loadertest.Result{}
	for _, st := range s.Steps {
		if st.Run == 0 {
			if err := c.Maps[st.Map].Update(st.Key, st.Value, maps.UpdateAny); err != nil {
				return nil, nil, err
			}
			continue
		}
		for i := 0; i < st.Run; i++ {
			r0, err := p.Run(vmContext)
			if err != nil {
				return nil, nil, fmt.Errorf("run %d: %w", len(res.Returns), err)
			}
			res.Returns = append(res.Returns, uint32(r0))
		}
	}
	for _, name := range s.Dump {
		mp := c.Maps[name]
		if mp == nil {
			return nil, nil, fmt.Errorf("no map %s", name)
		}
		if mp.Type() == maps.RingBuf {
			recs, err := drainRing(mp)
			if err != nil {
				return nil, nil, err
			}
			if res.Rings == nil {
				res.Rings = map[string][][]byte{}
			}
			res.Rings[name] = recs
			continue
		}
		dump, err := dumpMap(mp)
		if err != nil {
			return nil, nil, err
		}
		if res.Maps == nil {
			res.Maps = map[string][]loadertest.Entry{}
		}
		res.Maps[name] = dump
	}
	return res, nil, nil
}

// drainRing reads the records a ring holds, without waiting.
func drainRing(m *maps.Map) ([][]byte, error) {
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	recs := [][]byte{}
	for {
		rec, err := rd.Read(ctx)
		if errors.Is(err, context.Canceled) {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec.RawSample)
	}
}

func dumpMap(m *maps.Map) ([]loadertest.Entry, error) {
	var out []loadertest.Entry
	var key []byte
	for {
		next := make([]byte, m.KeySize())
		err := m.NextKey(key, next)
		if errors.Is(err, maps.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		v := make([]byte, m.UserValueSize())
		if err := m.Lookup(next, v, 0); err != nil {
			return nil, err
		}
		out = append(out, loadertest.Entry{Key: next, Value: v})
		key = next
	}
	loadertest.SortEntries(out)
	return out, nil
}

// knownBroken are scenarios that do not run on our VM yet, with the
// reason; delete an entry once its bug is fixed.
var knownBroken = map[string]string{}

// TestDifferential runs every scenario on our VM and compares the return
// values and map contents with the kernel's stored results. Scenarios
// whose helpers or kfuncs the VM does not have yet are skipped, naming
// what is missing.
func TestDifferential(t *testing.T) {
	stored, err := loadertest.LoadResults()
	if err != nil {
		t.Fatal(err)
	}
	r := newRegion(t)
	for _, s := range loadertest.Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			if why, ok := knownBroken[s.Name]; ok {
				t.Skipf("known host bug: %s", why)
			}
			got, missing, err := runVM(r, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(missing) > 0 {
				t.Skipf("the VM lacks %s", strings.Join(missing, ", "))
			}
			if ok, diff := got.Equal(stored[s.Name]); !ok {
				t.Fatalf("VM differs from the kernel: %s", diff)
			}
		})
	}
}
