package loader

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/verifier"
)

// Graph fields of map values and allocated objects, read from BTF as the
// kernel reads them (kernel-map-semantics §7.1): struct bpf_list_head and
// struct bpf_rb_root members (or global variables) carry a declaration tag
// "contains:<struct>:<node member>" naming the objects they hold; nodes
// (bpf_list_node, bpf_rb_node) and bpf_refcount are recorded by offset.

// graphTypes are the BTF struct names of the special graph fields.
var graphTypes = map[string]verifier.FieldKind{
	"bpf_list_head": verifier.ListHead,
	"bpf_list_node": verifier.ListNode,
	"bpf_rb_root":   verifier.RBRoot,
	"bpf_rb_node":   verifier.RBNode,
	"bpf_refcount":  verifier.Refcount,
}

// fieldParser resolves contained types in one object's BTF, each once.
type fieldParser struct {
	types *btf.Spec
	objs  map[btf.Type]*verifier.ObjType
}

func newFieldParser(types *btf.Spec) *fieldParser {
	return &fieldParser{types: types, objs: map[btf.Type]*verifier.ObjType{}}
}

// fields returns the graph fields of a map value or object type.
func (p *fieldParser) fields(t btf.Type) ([]verifier.Field, error) {
	var out []verifier.Field
	err := p.walk(t, 0, nil, 0, &out)
	return out, err
}

func (p *fieldParser) walk(t btf.Type, base uint64, tags []string, depth int, out *[]verifier.Field) error {
	if depth > maxBTFDepth {
		return fmt.Errorf("value type nests deeper than %d levels", maxBTFDepth)
	}
	t = btf.UnderlyingType(t)
	switch v := t.(type) {
	case *btf.Struct:
		if k, ok := graphTypes[v.Name]; ok {
			f := verifier.Field{Kind: k, Offset: uint32(base)}
			if k == verifier.ListHead || k == verifier.RBRoot {
				if err := p.contains(&f, tags); err != nil {
					return fmt.Errorf("%s at offset %d: %w", v.Name, base, err)
				}
			}
			*out = append(*out, f)
			return nil
		}
		for _, m := range v.Members {
			if err := p.walk(m.Type, base+uint64(m.Offset.Bytes()), m.Tags, depth+1, out); err != nil {
				return err
			}
		}
	case *btf.Datasec:
		for _, vs := range v.Vars {
			var tags []string
			if vr, ok := vs.Type.(*btf.Var); ok {
				tags = vr.Tags
			}
			if err := p.walk(vs.Type, base+uint64(vs.Offset), tags, depth+1, out); err != nil {
				return err
			}
		}
	case *btf.Var:
		return p.walk(v.Type, base, append(tags, v.Tags...), depth+1, out)
	}
	return nil
}

// contains resolves a root's "contains:type:node" tag.
func (p *fieldParser) contains(f *verifier.Field, tags []string) error {
	for _, tag := range tags {
		rest, ok := strings.CutPrefix(tag, "contains:")
		if !ok {
			continue
		}
		name, node, ok := strings.Cut(rest, ":")
		if !ok {
			return fmt.Errorf("declaration tag %q: want contains:<struct>:<node member>", tag)
		}
		if p.types == nil {
			return fmt.Errorf("contains %s: the object has no BTF", name)
		}
		var st *btf.Struct
		if err := p.types.TypeByName(name, &st); err != nil {
			return fmt.Errorf("contains %s: %w", name, err)
		}
		elem, err := p.objType(st)
		if err != nil {
			return err
		}
		for _, nf := range elem.Fields {
			if nf.Kind == verifier.ListNode || nf.Kind == verifier.RBNode {
				if m := memberAt(st, node); m != nil && uint32(m.Offset.Bytes()) == nf.Offset {
					want := verifier.ListNode
					if f.Kind == verifier.RBRoot {
						want = verifier.RBNode
					}
					if nf.Kind != want {
						return fmt.Errorf("contains %s:%s: %s is a %s, want a %s", name, node, node, nf.Kind, want)
					}
					f.Elem, f.NodeOff = elem, nf.Offset
					return nil
				}
			}
		}
		return fmt.Errorf("contains %s:%s: struct %s has no node member %s", name, node, name, node)
	}
	return fmt.Errorf("no contains:<struct>:<node> declaration tag (declare it with __contains(type, node))")
}

func memberAt(st *btf.Struct, name string) *btf.Member {
	for i := range st.Members {
		if st.Members[i].Name == name {
			return &st.Members[i]
		}
	}
	return nil
}

// objType describes a struct bpf_obj_new allocates or a root contains.
func (p *fieldParser) objType(t btf.Type) (*verifier.ObjType, error) {
	if o, ok := p.objs[t]; ok {
		return o, nil
	}
	st, ok := btf.UnderlyingType(t).(*btf.Struct)
	if !ok {
		return nil, fmt.Errorf("%s is not a struct", t)
	}
	o := &verifier.ObjType{Name: st.Name, Size: st.Size, Type: st}
	p.objs[t] = o // before its fields: a type may contain itself
	off, found, err := FindSpinLock(st)
	if err != nil {
		return nil, fmt.Errorf("struct %s: %w", st.Name, err)
	}
	o.HasLock, o.LockOff = found, off
	if o.Fields, err = p.fields(st); err != nil {
		return nil, fmt.Errorf("struct %s: %w", st.Name, err)
	}
	return o, nil
}

// localType returns the type a CO-RE local_type_id relocation names
// (what clang emits for bpf_core_type_id_local, as bpf_obj_new does), or
// false for any other relocation kind.
func localType(rel *btf.CORERelocation, types *btf.Spec) (btf.Type, bool) {
	if types == nil || !strings.HasPrefix(rel.String(), "CORERelocation(local_type_id,") {
		return nil, false
	}
	var typ btf.Type
	fix, err := btf.CORERelocate([]*btf.CORERelocation{rel}, []*btf.Spec{types}, binary.LittleEndian,
		func(t btf.Type) (btf.TypeID, error) { typ = t; return types.TypeID(t) })
	if err != nil || len(fix) != 1 || typ == nil {
		return nil, false
	}
	return typ, true
}
