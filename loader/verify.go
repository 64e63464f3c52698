package loader

import (
	"fmt"
	"slices"

	"github.com/userbpf/userbpf/verifier"
)

// VerifierProgram builds the verifier's input for program name: its
// instructions, line info and functions, and what the verifier needs to
// know about each map it references (sizes, lock, graph fields).
func (o *ObjectSpec) VerifierProgram(name string) (*verifier.Program, error) {
	ps := o.Programs[name]
	if ps == nil {
		return nil, fmt.Errorf("no program %s", name)
	}
	fp := newFieldParser(o.types)
	byObj := map[string]*MapSpec{}
	for _, ms := range o.Maps {
		byObj[ms.ObjName] = ms
	}
	p := &verifier.Program{Name: ps.Name, Type: uint32(ps.Type), Insns: ps.Insns, Kfuncs: ps.Kfuncs, Funcs: ps.Funcs,
		Lines: ps.Lines, ObjTypes: map[int]*verifier.ObjType{}}
	for _, mn := range ps.MapNames {
		ms := byObj[mn]
		if ms == nil {
			return nil, fmt.Errorf("program %s: map %s is not a map of the object", name, mn)
		}
		m, err := verifierMap(ms, fp)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", mn, err)
		}
		p.Maps = append(p.Maps, m)
	}
	for at, t := range ps.ObjTypes {
		ot, err := fp.objType(t)
		if err != nil {
			return nil, fmt.Errorf("program %s: instruction %d: bpf_obj_new type: %w", name, at, err)
		}
		p.ObjTypes[at] = ot
	}
	return p, nil
}

func verifierMap(ms *MapSpec, fp *fieldParser) (*verifier.Map, error) {
	s := ms.Spec
	m := &verifier.Map{Name: ms.ObjName, Type: s.Type, KeySize: s.KeySize, ValueSize: s.ValueSize,
		MaxEntries: s.MaxEntries, HasLock: s.HasLock, LockOff: s.LockOffset, ReadOnly: ms.ReadOnly,
		GlobalData: ms.GlobalData}
	if ms.ValueType != nil {
		fs, err := fp.fields(ms.ValueType)
		if err != nil {
			return nil, err
		}
		m.Fields = fs
	}
	if ms.Inner != nil {
		inner, err := verifierMap(ms.Inner, fp)
		if err != nil {
			return nil, fmt.Errorf("inner map: %w", err)
		}
		m.Inner = inner
	}
	return m, nil
}

// Verify runs the verifier on every program of the object, in name
// order, and returns the first failure (an error wrapping a
// *verifier.Error, naming the program).
func (o *ObjectSpec) Verify(opts *verifier.Options) error {
	for _, name := range sortedNames(o.Programs) {
		p, err := o.VerifierProgram(name)
		if err != nil {
			return err
		}
		if opts != nil && opts.Log != nil {
			fmt.Fprintf(opts.Log, "program %s:\n", name)
		}
		if err := verifier.Verify(p, opts); err != nil {
			return fmt.Errorf("program %s: verifier: %w", name, err)
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
