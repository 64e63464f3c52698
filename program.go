package userbpf

import (
	"fmt"
	"io"
	"sort"

	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/programs"
	"github.com/userbpf/userbpf/shm"
	"github.com/userbpf/userbpf/verifier"
)

// Collection is an object file loaded into a region: its maps (created, or
// reused when a compatible map of the same name exists) and its programs,
// stored in the region so any attached process can run them by name.
type Collection struct {
	Maps     map[string]*maps.Map
	Programs map[string]*programs.Program
}

// LoadCollection loads the eBPF object at path (compiled with clang
// -target bpf, as for the kernel) into the region. Every program is
// verified first (package verifier); if one fails, nothing is loaded and
// the error wraps its *verifier.Error.
func LoadCollection(r *Region, path string) (*Collection, error) {
	return LoadCollectionWithOptions(r, path, nil)
}

// CollectionOptions tune LoadCollectionWithOptions. The zero value is
// valid.
type CollectionOptions struct {
	// VerifierLog, if set, receives the verifier's full trace of every
	// program (instructions and register states).
	VerifierLog io.Writer
}

// LoadCollectionWithOptions is LoadCollection with options.
func LoadCollectionWithOptions(r *Region, path string, opts *CollectionOptions) (*Collection, error) {
	if opts == nil {
		opts = &CollectionOptions{}
	}
	spec, err := loader.ParseFile(path, nil)
	if err != nil {
		return nil, err
	}
	if err := spec.Verify(&verifier.Options{Log: opts.VerifierLog}); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// A program name already taken would fail the store below after the
	// maps were created and the earlier programs stored: refuse it first,
	// so that the usual mistake (loading an object twice, or two objects
	// with a program of the same name) leaves the region as it was.
	// (Another process storing the same name in between still can.)
	taken := map[string]bool{}
	for _, n := range r.Programs() {
		taken[n] = true
	}
	for n := range spec.Programs {
		if taken[n] {
			return nil, fmt.Errorf("load %s: program %q: %w in the region", path, n, shm.ErrExist)
		}
	}
	lc, err := spec.Load(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &Collection{Maps: lc.Maps, Programs: map[string]*programs.Program{}}
	names := make([]string, 0, len(lc.Programs))
	for n := range lc.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		lp := lc.Programs[n]
		if err := lp.ResolveKfuncs(programs.KfuncID); err != nil {
			return nil, err
		}
		ms := make([]programs.StoredMap, len(lp.VM.Maps))
		for i, ref := range lp.VM.Maps {
			m, ok := ref.Handle.(*maps.Map)
			if !ok {
				return nil, fmt.Errorf("load %s: program %s: map reference %d has no map", path, n, i)
			}
			ms[i] = programs.StoredMap{Name: m.Name(), GlobalData: ref.ValueAddr != 0, ReadOnly: ref.ReadOnly}
		}
		if err := programs.StoreWithTypes(r.shm, n, uint32(lp.Spec.Type), lp.VM.Insns, ms, lp.Spec.Types); err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		p, err := r.Program(n)
		if err != nil {
			return nil, err
		}
		c.Programs[n] = p
	}
	return c, nil
}

// Program opens the program called name, loaded into the region by this
// or any other process.
func (r *Region) Program(name string) (*programs.Program, error) {
	return programs.Open(r.shm, r.rcu, name)
}

// Programs lists the programs loaded into the region.
func (r *Region) Programs() []string { return programs.Names(r.shm) }
