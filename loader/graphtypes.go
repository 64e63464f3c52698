package loader

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/graph"
)

// Graph types: the special fields of map values and of the structs
// programs allocate with bpf_obj_new, read from the object's BTF as the
// kernel's btf_parse_fields reads them. A root (bpf_rb_root,
// bpf_list_head) names what it holds with a declaration tag
// "contains:<struct>:<node member>" (the __contains macro); the struct is
// looked up by name in the object's BTF.

// specialKinds are the kernel's special struct types by name.
var specialKinds = map[string]graph.Kind{
	"bpf_spin_lock": graph.KindLock,
	"bpf_refcount":  graph.KindRefcount,
	"bpf_list_head": graph.KindListHead,
	"bpf_list_node": graph.KindListNode,
	"bpf_rb_root":   graph.KindRBRoot,
	"bpf_rb_node":   graph.KindRBNode,
}

// graphBuilder collects the types of one table.
type graphBuilder struct {
	types *btf.Spec
	tb    graph.Table
	index map[btf.Type]uint32
	roots bool // some type has a container
}

func newGraphBuilder(types *btf.Spec) *graphBuilder {
	return &graphBuilder{types: types, index: map[btf.Type]uint32{}}
}

// add adds t (a struct or a data section) and the types its containers
// hold, and returns t's index.
func (b *graphBuilder) add(t btf.Type) (uint32, error) {
	t = btf.UnderlyingType(t)
	if i, ok := b.index[t]; ok {
		return i, nil
	}
	size, err := btf.Sizeof(t)
	if err != nil {
		return 0, fmt.Errorf("graph type %s: %w", t, err)
	}
	i := uint32(len(b.tb.Types))
	if i >= 256 {
		return 0, fmt.Errorf("more than 256 graph types")
	}
	b.index[t] = i
	b.tb.Types = append(b.tb.Types, graph.Type{Name: t.TypeName(), Size: uint32(size)})
	var fields []graph.Field
	if err := b.fields(t, 0, nil, 0, &fields); err != nil {
		return 0, fmt.Errorf("type %s: %w", t.TypeName(), err)
	}
	b.tb.Types[i].Fields = fields
	return i, nil
}

// fields walks t (at offset base, declared with tags) for special fields.
func (b *graphBuilder) fields(t btf.Type, base uint32, tags []string, depth int, out *[]graph.Field) error {
	if depth > maxBTFDepth {
		return fmt.Errorf("nested deeper than %d levels", maxBTFDepth)
	}
	t = btf.UnderlyingType(t)
	switch v := t.(type) {
	case *btf.Struct:
		if k, ok := specialKinds[v.Name]; ok {
			f := graph.Field{Kind: k, Off: base}
			if k.IsRoot() {
				if err := b.contains(&f, tags); err != nil {
					return err
				}
			}
			*out = append(*out, f)
			return nil
		}
		for _, m := range v.Members {
			if err := b.fields(m.Type, base+m.Offset.Bytes(), m.Tags, depth+1, out); err != nil {
				return err
			}
		}
	case *btf.Datasec:
		for _, vs := range v.Vars {
			var vtags []string
			if vr, ok := vs.Type.(*btf.Var); ok {
				vtags = vr.Tags
			}
			if err := b.fields(vs.Type, base+vs.Offset, vtags, depth+1, out); err != nil {
				return err
			}
		}
	case *btf.Var:
		return b.fields(v.Type, base, append(tags, v.Tags...), depth+1, out)
	}
	return nil
}

// contains resolves a root's "contains:<struct>:<member>" tag.
func (b *graphBuilder) contains(f *graph.Field, tags []string) error {
	var name, member string
	for _, tag := range tags {
		if rest, ok := strings.CutPrefix(tag, "contains:"); ok {
			name, member, ok = strings.Cut(rest, ":")
			if !ok {
				return fmt.Errorf("%s at offset %d: malformed tag %q", f.Kind, f.Off, tag)
			}
		}
	}
	if name == "" {
		return fmt.Errorf("%s at offset %d has no contains:<struct>:<node> declaration tag (__contains)", f.Kind, f.Off)
	}
	if b.types == nil {
		return fmt.Errorf("%s at offset %d: the object has no BTF to find struct %s in", f.Kind, f.Off, name)
	}
	var st *btf.Struct
	if err := b.types.TypeByName(name, &st); err != nil {
		return fmt.Errorf("%s at offset %d contains struct %s: %w", f.Kind, f.Off, name, err)
	}
	nodeKind := graph.KindRBNode
	if f.Kind == graph.KindListHead {
		nodeKind = graph.KindListNode
	}
	found := false
	for _, m := range st.Members {
		if m.Name != member {
			continue
		}
		mt, ok := btf.UnderlyingType(m.Type).(*btf.Struct)
		if !ok || specialKinds[mt.Name] != nodeKind {
			return fmt.Errorf("%s at offset %d: member %s of struct %s is not a %s", f.Kind, f.Off, member, name, nodeKind)
		}
		f.NodeOff, found = m.Offset.Bytes(), true
	}
	if !found {
		return fmt.Errorf("%s at offset %d: struct %s has no member %s", f.Kind, f.Off, name, member)
	}
	elem, err := b.add(st)
	if err != nil {
		return err
	}
	f.Elem = elem
	b.roots = true
	return nil
}

// table returns the built table, validated.
func (b *graphBuilder) table() (*graph.Table, error) {
	tb := &graph.Table{Types: b.tb.Types}
	if err := tb.Validate(); err != nil {
		return nil, err
	}
	return tb, nil
}

// valueGraph returns the graph table of a map value type (the value type
// first) if the value holds containers, else nil.
func valueGraph(types *btf.Spec, value btf.Type) (*graph.Table, error) {
	if value == nil {
		return nil, nil
	}
	b := newGraphBuilder(types)
	if _, err := b.add(value); err != nil {
		return nil, err
	}
	if !b.roots {
		return nil, nil
	}
	return b.table()
}

// localTypeID resolves a bpf_core_type_id_local relocation (the only CO-RE
// relocation userbpf takes: it needs no kernel BTF): the instruction's
// constant becomes the type's index in the program's graph table.
func localTypeID(b *graphBuilder, ins *asm.Instruction, rel *btf.CORERelocation) error {
	if b.types == nil {
		return fmt.Errorf("%w: CO-RE relocation %s without BTF", ErrUnsupported, rel)
	}
	var local btf.Type
	_, err := btf.CORERelocate([]*btf.CORERelocation{rel}, []*btf.Spec{b.types}, binary.LittleEndian, func(t btf.Type) (btf.TypeID, error) {
		local = t
		return 0, nil
	})
	if err != nil || local == nil {
		return fmt.Errorf("%w: CO-RE relocation %s (only bpf_core_type_id_local is taken; there is no kernel BTF to relocate against)", ErrUnsupported, rel)
	}
	if _, ok := btf.UnderlyingType(local).(*btf.Struct); !ok {
		return fmt.Errorf("%w: bpf_core_type_id_local of %s, not a struct", ErrUnsupported, local)
	}
	idx, err := b.add(local)
	if err != nil {
		return err
	}
	if !ins.OpCode.IsDWordLoad() {
		return fmt.Errorf("%w: bpf_core_type_id_local on %v, not a 64-bit load", ErrUnsupported, ins.OpCode)
	}
	ins.Constant = int64(idx)
	return nil
}
