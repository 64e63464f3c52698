package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/shm"
	"github.com/userbpf/userbpf/vm"
)

// Region is where Load creates and finds maps; *userbpf.Region is one.
type Region interface {
	CreateMap(spec maps.Spec) (*maps.Map, error)
	OpenMap(name string, flags uint32) (*maps.Map, error)
}

// Collection is a loaded object: its maps in the region and its programs.
type Collection struct {
	// Maps are the object's maps by their names in the object (".data",
	// ".bss", ".rodata" for global data; inner-map templates are not
	// listed). Map.Name() is the name in the region.
	Maps map[string]*maps.Map
	// Programs are the object's programs by name.
	Programs map[string]*Program
	// Reused names the maps (by object name) that were already in the
	// region and were reused rather than created.
	Reused map[string]bool
}

// Close closes the collection's map handles. The maps stay in the region
// (they are pinned by name).
func (c *Collection) Close() error {
	var first error
	for _, m := range c.Maps {
		if err := m.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Program is a loaded program: the vm.Program to run and its metadata.
type Program struct {
	// Spec is the parsed program: section, type, license, helpers,
	// kfuncs by instruction index, and the object names of VM.Maps.
	Spec *ProgramSpec
	// VM is the program for the interpreter. Its Insns are its own copy;
	// kfunc calls hold -1 until ResolveKfuncs.
	VM *vm.Program
}

// ResolveKfuncs sets the Imm of every kfunc call to the id resolve gives
// the kfunc's name (the index in the host's vm.KfuncTable). A name resolve
// does not know is an error naming it and the instruction.
func (p *Program) ResolveKfuncs(resolve func(name string) (int32, bool)) error {
	idx := make([]int, 0, len(p.Spec.Kfuncs))
	for i := range p.Spec.Kfuncs {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		name := p.Spec.Kfuncs[i]
		id, ok := resolve(name)
		if !ok {
			return fmt.Errorf("program %s: instruction %d: %w: kfunc %s", p.Spec.Name, i, ErrUnsupported, name)
		}
		p.VM.Insns[i].Imm = id
	}
	return nil
}

// Load parses the object at path and loads it into r (see the package
// documentation for what loading does).
func Load(r Region, path string) (*Collection, error) {
	return LoadWithOptions(r, path, nil)
}

// LoadWithOptions is Load with options.
func LoadWithOptions(r Region, path string, opts *Options) (*Collection, error) {
	spec, err := ParseFile(path, opts)
	if err != nil {
		return nil, err
	}
	c, err := spec.Load(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Load creates (or reuses) the object's maps in r and builds its programs.
// A failure may leave maps it created in the region, as a failed libbpf
// load leaves pinned maps in bpffs.
func (o *ObjectSpec) Load(r Region) (*Collection, error) {
	c := &Collection{Maps: map[string]*maps.Map{}, Programs: map[string]*Program{}, Reused: map[string]bool{}}
	handles := map[string]*maps.Map{}
	specs := map[string]*MapSpec{}
	created := map[string]bool{}
	for _, ms := range o.Maps {
		s := ms.Spec
		if ms.Inner != nil {
			s.InnerMap = handles[ms.Inner.ObjName]
			if s.InnerMap == nil {
				return nil, fmt.Errorf("map %s: inner map template %s was not created", ms.ObjName, ms.Inner.ObjName)
			}
		}
		m, reused, err := createOrReuse(r, ms, s)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", ms.ObjName, err)
		}
		if !reused {
			created[ms.ObjName] = true
			if f := ms.formats(); f.Key != nil || f.Value != nil {
				m.SetFormat(f) // for formatted dumps; a map without one prints bytes
			}
			if err := initGlobalData(m, ms); err != nil {
				return nil, fmt.Errorf("map %s: %w", ms.ObjName, err)
			}
		}
		handles[ms.ObjName] = m
		specs[ms.ObjName] = ms
		if !ms.isTemplate {
			c.Maps[ms.ObjName] = m
			if reused {
				c.Reused[ms.ObjName] = true
			}
		}
	}
	// Static .values of new map-in-maps, now that every map exists.
	for _, ms := range o.Maps {
		if !created[ms.ObjName] {
			continue
		}
		for _, k := range sortedKeys(ms.InnerMaps) {
			inner := handles[ms.InnerMaps[k]]
			key := make([]byte, ms.Spec.KeySize)
			if len(key) < 4 {
				return nil, fmt.Errorf("map %s: %d-byte keys cannot hold index %d", ms.ObjName, len(key), k)
			}
			binary.NativeEndian.PutUint32(key, k)
			if err := handles[ms.ObjName].Update(key, binary.NativeEndian.AppendUint32(nil, inner.ID()), maps.UpdateAny); err != nil {
				return nil, fmt.Errorf("map %s: .values[%d] = %s: %w", ms.ObjName, k, ms.InnerMaps[k], err)
			}
		}
	}
	for name, ps := range o.Programs {
		p := &vm.Program{Name: name, Insns: slices.Clone(ps.Insns), Maps: make([]vm.MapRef, len(ps.MapNames))}
		for i, mn := range ps.MapNames {
			m := handles[mn]
			if m == nil {
				return nil, fmt.Errorf("program %s: map %s was not loaded", name, mn)
			}
			ref := vm.MapRef{Handle: m, ReadOnly: m.Flags()&maps.FlagRdOnlyProg != 0}
			if m.Type() == maps.Array && m.MaxEntries() == 1 {
				ptr, err := m.ValuePointer(0)
				if err != nil {
					return nil, fmt.Errorf("program %s: map %s: %w", name, mn, err)
				}
				ref.ValueAddr, ref.ValueSize = uintptr(ptr), m.ValueSize()
			}
			p.Maps[i] = ref
		}
		c.Programs[name] = &Program{Spec: ps, VM: p}
	}
	return c, nil
}

// createOrReuse creates the map, or opens the map of that name in the
// region and checks it is compatible.
func createOrReuse(r Region, ms *MapSpec, s maps.Spec) (*maps.Map, bool, error) {
	m, err := r.OpenMap(s.Name, 0)
	if errors.Is(err, shm.ErrNotExist) {
		m, err = r.CreateMap(s)
		if err == nil {
			return m, false, nil
		}
		if !errors.Is(err, shm.ErrExist) {
			return nil, false, err
		}
		// Another process created it meanwhile: reuse theirs.
		m, err = r.OpenMap(s.Name, 0)
	}
	if err != nil {
		return nil, false, err
	}
	if err := compatible(m, s); err != nil {
		return nil, false, err
	}
	if ms.Freeze {
		// The creator writes the constants, then freezes: a loader racing
		// with it waits for the freeze before comparing.
		for i := 0; !m.Frozen() && i < 100; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if !m.Frozen() {
			return nil, false, fmt.Errorf("%w: the region's %q is not frozen (not a .rodata, or its loader died before freezing it)", ErrIncompatible, s.Name)
		}
		// Constants must be the ones this object was loaded with.
		got := make([]byte, m.ValueSize())
		if err := m.Lookup(make([]byte, 4), got, 0); err != nil {
			return nil, false, err
		}
		if !bytes.Equal(got, ms.Data) {
			return nil, false, fmt.Errorf("%w: the region's %q holds other constants than the object's %s", ErrIncompatible, s.Name, ms.ObjName)
		}
	}
	return m, true, nil
}

// initGlobalData writes a new global-data map's contents and freezes
// .rodata.
func initGlobalData(m *maps.Map, ms *MapSpec) error {
	if !ms.GlobalData {
		return nil
	}
	if slices.ContainsFunc(ms.Data, func(b byte) bool { return b != 0 }) {
		if err := m.Update(make([]byte, 4), ms.Data, maps.UpdateAny); err != nil {
			return err
		}
	}
	if ms.Freeze {
		return m.Freeze()
	}
	return nil
}

// compatible says whether the region's map m can stand for spec s (what
// libbpf's map_is_reuse_compat checks for pinned maps, plus the lock).
func compatible(m *maps.Map, s maps.Spec) error {
	have, off := m.HasLock()
	ok := m.Type() == s.Type && m.KeySize() == s.KeySize && m.ValueSize() == s.ValueSize &&
		m.Flags() == s.Flags&^(maps.FlagRdOnly|maps.FlagWrOnly) && have == s.HasLock && (!have || off == s.LockOffset) &&
		maxEntriesMatch(m, s)
	if ok && s.Type == maps.BloomFilter {
		ok = m.MapExtra() == s.MapExtra
	}
	if !ok {
		return fmt.Errorf("%w: the region's %q is %s, the object declares %s", ErrIncompatible, s.Name, describeMap(m), describeSpec(s))
	}
	if !m.GraphTable().Same(s.Graph) {
		// Drains and the programs' lock checks follow the region's table:
		// other containers in the value would be freed wrongly.
		return fmt.Errorf("%w: the region's %q holds other graph containers (bpf_rb_root / bpf_list_head and their node types) than the object declares", ErrIncompatible, s.Name)
	}
	return nil
}

// maxEntriesMatch allows for the region's rounding of an LRU hash without
// a common LRU list (max_entries rounded up to a multiple of the CPUs).
func maxEntriesMatch(m *maps.Map, s maps.Spec) bool {
	if m.MaxEntries() == s.MaxEntries {
		return true
	}
	lru := s.Type == maps.LRUHash || s.Type == maps.LRUPerCPUHash
	return lru && s.Flags&maps.FlagNoCommonLRU != 0 && m.MaxEntries() > s.MaxEntries &&
		int(m.MaxEntries()-s.MaxEntries) < m.NumCPU()
}

func describeSpec(s maps.Spec) string {
	d := fmt.Sprintf("%s key %d value %d max_entries %d flags %#x", s.Type, s.KeySize, s.ValueSize, s.MaxEntries, s.Flags)
	if s.HasLock {
		d += fmt.Sprintf(" bpf_spin_lock at %d", s.LockOffset)
	}
	return d
}

func describeMap(m *maps.Map) string {
	s := maps.Spec{Type: m.Type(), KeySize: m.KeySize(), ValueSize: m.ValueSize(), MaxEntries: m.MaxEntries(), Flags: m.Flags()}
	s.HasLock, s.LockOffset = m.HasLock()
	return describeSpec(s)
}

func sortedKeys(m map[uint32]string) []uint32 {
	ks := make([]uint32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
