package graph

// Root names one container: where its root field is and what it holds.
type Root struct {
	// Off is the region offset of the bpf_rb_root or bpf_list_head.
	Off  uint64
	Kind Kind
	// Table and Elem are the type the container holds; NodeOff is its
	// node field's offset in that type.
	Table   *Table
	Elem    uint32
	NodeOff uint32
}

// RootOf is the container of field f (a root of a type of tb) in the value
// or object at base.
func RootOf(tb *Table, f Field, base uint64) Root {
	return Root{Off: base + uint64(f.Off), Kind: f.Kind, Table: tb, Elem: f.Elem, NodeOff: f.NodeOff}
}

func (rt Root) elemSize() uint32 { return rt.Table.Types[rt.Elem].Size }

// objectOf is the object a node of this container belongs to, validated.
func (h *Heap) objectOf(rt Root, node uint64) Object {
	if node < uint64(rt.NodeOff) {
		corrupt("node at %#x", node)
	}
	return h.object(node-uint64(rt.NodeOff), rt.elemSize())
}

// ObjectOf returns the object whose node (of this container's kind) is at
// node.
func (h *Heap) ObjectOf(rt Root, node uint64) (o Object, err error) {
	defer catch(&err)
	return h.objectOf(rt, node), nil
}
