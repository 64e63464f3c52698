package loader

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/verifier"
	"github.com/userbpf/userbpf/vm"
)

// ErrUnsupported marks a load error about something the object uses that
// userbpf does not implement (a map type, relocation, section, helper).
var ErrUnsupported = errors.New("not supported")

// ErrIncompatible marks a map of the object whose name is taken in the
// region by a map of another spec.
var ErrIncompatible = errors.New("incompatible with the map in the region")

// ErrMalformed marks a file that is not a complete ELF object: empty,
// truncated, or not ELF at all.
var ErrMalformed = errors.New("not a complete ELF object")

// Options tune parsing and loading. The zero value is valid.
type Options struct {
	// Prefix is put before the region name of every map of the object,
	// to load one object several times side by side.
	Prefix string
	// Constants set global variables (typically const volatile ones in
	// .rodata) before the maps are created: name → value, encoded as
	// cilium/ebpf's VariableSpec.Set encodes (native endianness; a []byte
	// is taken as is and must have the variable's size).
	Constants map[string]any
	// Helper says whether the host implements a helper. Nil accepts every
	// helper the kernel numbers (asm.BuiltinFunc's list).
	Helper func(asm.BuiltinFunc) bool
}

// ObjectSpec is a parsed object: everything Load needs except the region.
type ObjectSpec struct {
	// Name is the object's name (its file name without the extension),
	// the prefix of its global-data maps' names.
	Name string
	// Maps are the object's maps in creation order: inner-map templates
	// before their outer maps.
	Maps []*MapSpec
	// Programs are the object's programs, by name.
	Programs map[string]*ProgramSpec
	// types is the object's BTF (graph fields, bpf_obj_new types).
	types *btf.Spec
}

// MapSpec is one map of an object.
type MapSpec struct {
	// ObjName is the map's name in the object (cilium/ebpf's name: the
	// variable's, or the section's for global data).
	ObjName string
	// Spec is the map to create; Spec.Name is its name in the region.
	// Spec.InnerMap is nil here: Load creates Inner first and sets it.
	Spec maps.Spec
	// Inner is the inner-map template of a map-in-map.
	Inner *MapSpec
	// Data is the initial value of a global-data map (its single element).
	Data []byte
	// GlobalData says the map holds a data section (.data, .bss, .rodata…).
	GlobalData bool
	// Freeze says the map is frozen after Data is written (.rodata).
	Freeze bool
	// ReadOnly says programs may not write the map (BPF_F_RDONLY_PROG).
	ReadOnly bool
	// InnerMaps are a map-in-map's static .values: outer index → the
	// ObjName of the map stored there.
	InnerMaps map[uint32]string
	// KeyType and ValueType are the map's BTF key and value types, if the
	// object has them (for formatted dumps).
	KeyType, ValueType btf.Type
	// isTemplate marks an inner-map template (it is not in Collection.Maps
	// under an object name of its own).
	isTemplate bool
}

// ProgramSpec is one program of an object, ready to run once its maps
// exist.
type ProgramSpec struct {
	// Name is the program's name (its C function).
	Name string
	// Section is the ELF section it came from ("tc", "xdp", ...).
	Section string
	// Type and AttachType are what the section name says.
	Type       ebpf.ProgramType
	AttachType ebpf.AttachType
	// License is the object's license string.
	License string
	// Insns are the instructions: LD_IMM64 map loads hold indexes into
	// MapNames (vm.PseudoMapFD, vm.PseudoMapValue), calls to subprograms
	// and PseudoFunc loads hold relative offsets, kfunc calls hold -1.
	Insns []vm.Insn
	// MapNames are the ObjNames of the maps the program references, in
	// the order of vm.Program.Maps.
	MapNames []string
	// Kfuncs are the kfunc calls: instruction index → kfunc name.
	Kfuncs map[int]string
	// Helpers are the helpers the program calls, sorted.
	Helpers []asm.BuiltinFunc
	// Types are the structs the program allocates with bpf_obj_new (and
	// those their containers hold): each bpf_core_type_id_local load in
	// Insns holds an index into it. Nil if the program allocates nothing.
	Types *graph.Table
	// Lines is the BTF line info: Lines[i] is the source line instruction
	// i starts (zero where the object has none; it may be shorter than
	// Insns).
	Lines []verifier.Line
	// Funcs are the functions' entry instructions (the program's own at 0
	// and its subprograms).
	Funcs map[int]verifier.Func
	// ObjTypes are the types of bpf_obj_new: the instruction of each
	// CO-RE local_type_id relocation → the type it names (its Imm holds
	// the type's id in the object's BTF).
	ObjTypes map[int]btf.Type
}

// PseudoFunc is the Src of an LD_IMM64 that loads the address of a
// subprogram (BPF_PSEUDO_FUNC, a callback for bpf_loop or
// bpf_for_each_map_elem): its Imm is the subprogram's offset relative to
// the instruction after the LD_IMM64's first half.
const PseudoFunc = vm.PseudoFunc

// ParseFile parses the object at path.
func ParseFile(path string, opts *Options) (*ObjectSpec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	spec, err := Parse(f, name, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// Parse parses an object read from rd; name is the object's name (the
// prefix of its global-data maps' names).
func Parse(rd io.ReaderAt, name string, opts *Options) (spec *ObjectSpec, err error) {
	if opts == nil {
		opts = &Options{}
	}
	// The ELF and BTF parsers are cilium/ebpf's; whatever they do with a
	// hostile file, the caller gets an error.
	defer func() {
		if r := recover(); r != nil {
			spec, err = nil, fmt.Errorf("malformed object: parser failed: %v", r)
		}
	}()
	if err := checkSections(rd); err != nil {
		return nil, malformed(err)
	}
	cs, err := ebpf.LoadCollectionSpecFromReader(rd)
	if err != nil {
		return nil, malformed(err)
	}
	return FromCollectionSpec(cs, name, opts)
}

// malformed names what a bare end of file or ELF format error means: a
// user who gave a truncated object otherwise reads only "EOF".
func malformed(err error) error {
	var fe *elf.FormatError
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (truncated or empty): %w", ErrMalformed, err)
	}
	if errors.As(err, &fe) {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return err
}

// maxValueSize is the largest map value (KMALLOC_MAX_SIZE on x86-64), so
// the largest global-data section.
const maxValueSize = 4 << 20

// checkSections refuses sections whose size the file does not back
// (SHT_NOBITS: .bss) beyond what a map value can hold, before
// cilium/ebpf allocates them.
func checkSections(rd io.ReaderAt) error {
	f, err := elf.NewFile(rd)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS && s.Size > maxValueSize {
			return fmt.Errorf("section %s: %d bytes, more than a map value may hold (%d)", s.Name, s.Size, maxValueSize)
		}
	}
	return nil
}

// FromCollectionSpec converts a cilium/ebpf collection spec (from an ELF
// file, or built by hand with package asm) as Parse does; cs is not
// modified. objName is the prefix of global-data maps' names.
func FromCollectionSpec(cs *ebpf.CollectionSpec, objName string, opts *Options) (*ObjectSpec, error) {
	if opts == nil {
		opts = &Options{}
	}
	if len(opts.Constants) > 0 {
		cs = cs.Copy()
	}
	if err := setConstants(cs, opts.Constants); err != nil {
		return nil, err
	}
	o := &ObjectSpec{Name: sanitize(objName), Programs: map[string]*ProgramSpec{}, types: cs.Types}
	names := make([]string, 0, len(cs.Maps))
	for n := range cs.Maps {
		names = append(names, n)
	}
	sort.Strings(names)
	byObj := map[string]*MapSpec{}
	for _, n := range names {
		ms, err := convertMap(cs, n, cs.Maps[n], o.Name, opts.Prefix)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", n, err)
		}
		if ms.Inner != nil {
			o.Maps = append(o.Maps, ms.Inner)
		}
		o.Maps = append(o.Maps, ms)
		byObj[n] = ms
	}
	for _, ms := range o.Maps {
		for _, inner := range ms.InnerMaps {
			if byObj[inner] == nil {
				return nil, fmt.Errorf("map %s: .values refer to %q, which is not a map of the object", ms.ObjName, inner)
			}
		}
	}
	seen := map[string]string{}
	for _, ms := range o.Maps {
		if other, dup := seen[ms.Spec.Name]; dup {
			return nil, fmt.Errorf("maps %s and %s both have the region name %q", other, ms.ObjName, ms.Spec.Name)
		}
		seen[ms.Spec.Name] = ms.ObjName
	}
	pnames := make([]string, 0, len(cs.Programs))
	for n := range cs.Programs {
		pnames = append(pnames, n)
	}
	sort.Strings(pnames)
	for _, n := range pnames {
		ps, err := convertProgram(cs.Programs[n], cs.Types, byObj, opts)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", n, err)
		}
		o.Programs[n] = ps
	}
	return o, nil
}

// setConstants applies Options.Constants to the variables and so to the
// data sections' contents.
func setConstants(cs *ebpf.CollectionSpec, consts map[string]any) error {
	for name, v := range consts {
		vs, ok := cs.Variables[name]
		if !ok {
			return fmt.Errorf("constant %s: the object has no such global variable", name)
		}
		if b, ok := v.([]byte); ok && uint32(len(b)) != vs.Size() {
			return fmt.Errorf("constant %s: %d bytes for a %d-byte variable", name, len(b), vs.Size())
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("constant %s: %w", name, err)
		}
	}
	return nil
}

// sectionData returns a data section's contents with its variables'
// values (which Options.Constants may have set) written in.
func sectionData(cs *ebpf.CollectionSpec, section string, ms *ebpf.MapSpec) ([]byte, error) {
	data := make([]byte, ms.ValueSize)
	switch len(ms.Contents) {
	case 0:
	case 1:
		kv := ms.Contents[0]
		if k, ok := kv.Key.(uint32); !ok || k != 0 {
			return nil, fmt.Errorf("data section contents have key %v, want 0", kv.Key)
		}
		b, ok := kv.Value.([]byte)
		if !ok {
			return nil, fmt.Errorf("data section contents are %T, want bytes", kv.Value)
		}
		if len(b) > len(data) {
			return nil, fmt.Errorf("data section contents have %d bytes, the value %d", len(b), len(data))
		}
		copy(data, b)
	default:
		return nil, fmt.Errorf("data section with %d elements", len(ms.Contents))
	}
	for _, vs := range cs.Variables {
		if vs.SectionName != section || vs.Value == nil {
			continue
		}
		end := uint64(vs.Offset) + uint64(len(vs.Value))
		if end > uint64(len(data)) {
			return nil, fmt.Errorf("variable %s (offset %d, %d bytes) is past the section's %d bytes", vs.Name, vs.Offset, len(vs.Value), len(data))
		}
		copy(data[vs.Offset:end], vs.Value)
	}
	return data, nil
}

// isDataSection says whether a map is one cilium/ebpf made of a data
// section.
func isDataSection(name string) bool {
	for _, p := range []string{".data", ".bss", ".rodata"} {
		if name == p || strings.HasPrefix(name, p+".") {
			return true
		}
	}
	return strings.HasPrefix(name, ".")
}

// sanitize turns a name into one the region accepts: [A-Za-z0-9_.].
func sanitize(s string) string {
	var b bytes.Buffer
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "obj"
	}
	return b.String()
}
