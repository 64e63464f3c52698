package graph

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Kind is the kind of a special field.
type Kind uint32

// The special fields, with the kernel's sizes.
const (
	KindLock     Kind = 1 // struct bpf_spin_lock, 4 bytes
	KindRefcount Kind = 2 // struct bpf_refcount, 4 bytes
	KindListHead Kind = 3 // struct bpf_list_head, 16 bytes
	KindListNode Kind = 4 // struct bpf_list_node, 24 bytes
	KindRBRoot   Kind = 5 // struct bpf_rb_root, 16 bytes
	KindRBNode   Kind = 6 // struct bpf_rb_node, 32 bytes
)

// Size is the field's size in bytes (0 for an unknown kind).
func (k Kind) Size() uint32 {
	switch k {
	case KindLock, KindRefcount:
		return 4
	case KindListHead, KindRBRoot:
		return 16
	case KindListNode:
		return 24
	case KindRBNode:
		return 32
	}
	return 0
}

// IsRoot says whether the field holds a container.
func (k Kind) IsRoot() bool { return k == KindListHead || k == KindRBRoot }

// node is the node kind a root of kind k holds.
func (k Kind) node() Kind {
	if k == KindListHead {
		return KindListNode
	}
	return KindRBNode
}

func (k Kind) String() string {
	switch k {
	case KindLock:
		return "bpf_spin_lock"
	case KindRefcount:
		return "bpf_refcount"
	case KindListHead:
		return "bpf_list_head"
	case KindListNode:
		return "bpf_list_node"
	case KindRBRoot:
		return "bpf_rb_root"
	case KindRBNode:
		return "bpf_rb_node"
	}
	return fmt.Sprintf("Kind(%d)", uint32(k))
}

// Field is one special field of a type.
type Field struct {
	Kind Kind
	// Off is the field's offset in the type.
	Off uint32
	// Elem and NodeOff are for roots: the index (in the same table) of the
	// type the container holds, and the offset of its node field in it
	// (the kernel's __contains(type, field)).
	Elem    uint32
	NodeOff uint32
}

// Type is a map value or object type: its size and special fields.
type Type struct {
	Name   string // for errors only; not stored in the region
	Size   uint32
	Fields []Field
}

// Lock returns the offset of the type's bpf_spin_lock.
func (t *Type) Lock() (uint32, bool) { return t.find(KindLock) }

// Refcount returns the offset of the type's bpf_refcount.
func (t *Type) Refcount() (uint32, bool) { return t.find(KindRefcount) }

func (t *Type) find(k Kind) (uint32, bool) {
	for _, f := range t.Fields {
		if f.Kind == k {
			return f.Off, true
		}
	}
	return 0, false
}

// FieldAt returns the field of kind k at offset off.
func (t *Type) FieldAt(off uint32, k Kind) (Field, bool) {
	for _, f := range t.Fields {
		if f.Off == off && f.Kind == k {
			return f, true
		}
	}
	return Field{}, false
}

// Roots returns the type's container fields.
func (t *Type) Roots() []Field {
	var rs []Field
	for _, f := range t.Fields {
		if f.Kind.IsRoot() {
			rs = append(rs, f)
		}
	}
	return rs
}

// Table is a set of types that refer to each other by index.
type Table struct {
	Types []Type
}

// Same reports whether tb and o describe the same types, fields and
// containment (names aside: they are not stored). Nil is the table of a
// value without containers.
func (tb *Table) Same(o *Table) bool {
	if tb == nil || o == nil {
		return tb == nil && o == nil
	}
	return bytes.Equal(tb.encode(), o.encode())
}

// Limits of a table.
const (
	maxTypes      = 256
	maxFields     = 64 // per type
	maxObjectSize = 1 << 20
)

// A stored table is one region block:
//
//	0   Magic u32     "UGTT"
//	4   Version u32   1
//	8   NTypes u32
//	12  NFields u32   all types' fields together
//	16  Types [NTypes × 16]    {Size u32, First u32, NFields u32, 0 u32}:
//	                           the type's fields are Fields[First:First+NFields]
//	…   Fields [NFields × 16]  {Kind u32, Off u32, Elem u32, NodeOff u32}
//
// Tables are written once, before their offset is published (in a map
// descriptor, a program record), and never change or go away.
const (
	tableMagic   = 0x54544755
	tableVersion = 1
	tableHeader  = 16
	tableRecord  = 16
)

// Validate checks what the kernel's field parsing checks: fields inside
// their type and aligned, never overlapping, at most one lock and one
// refcount, a lock next to every root, a root's element type having a node
// of the right kind at NodeOff, a list node and an rb node together only
// with a refcount, and no type containing itself (directly or not).
func (tb *Table) Validate() error {
	if len(tb.Types) == 0 || len(tb.Types) > maxTypes {
		return fmt.Errorf("%w: %d types", ErrInvalidTable, len(tb.Types))
	}
	for i := range tb.Types {
		if err := tb.validateType(i); err != nil {
			return err
		}
	}
	// Containment must be acyclic, so draining terminates.
	state := make([]uint8, len(tb.Types))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("%w: type %d (%s) contains itself", ErrInvalidTable, i, tb.Types[i].Name)
		case 2:
			return nil
		}
		state[i] = 1
		for _, f := range tb.Types[i].Roots() {
			if err := visit(int(f.Elem)); err != nil {
				return err
			}
		}
		state[i] = 2
		return nil
	}
	for i := range tb.Types {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

func (tb *Table) validateType(i int) error {
	t := &tb.Types[i]
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: type %d (%s): %s", ErrInvalidTable, i, t.Name, fmt.Sprintf(format, args...))
	}
	if t.Size == 0 || t.Size > maxObjectSize || len(t.Fields) > maxFields {
		return bad("size %d with %d fields", t.Size, len(t.Fields))
	}
	count := map[Kind]int{}
	hasRoot := false
	for j, f := range t.Fields {
		sz := f.Kind.Size()
		if sz == 0 {
			return bad("field %d has unknown kind %d", j, f.Kind)
		}
		align := uint32(8)
		if sz == 4 {
			align = 4
		}
		if f.Off%align != 0 || uint64(f.Off)+uint64(sz) > uint64(t.Size) {
			return bad("%s at offset %d does not fit %d bytes aligned", f.Kind, f.Off, t.Size)
		}
		for _, g := range t.Fields[:j] {
			if f.Off < g.Off+g.Kind.Size() && g.Off < f.Off+sz {
				return bad("%s at %d overlaps %s at %d", f.Kind, f.Off, g.Kind, g.Off)
			}
		}
		count[f.Kind]++
		if f.Kind.IsRoot() {
			hasRoot = true
			if int(f.Elem) >= len(tb.Types) {
				return bad("%s at %d holds type %d, not in the table", f.Kind, f.Off, f.Elem)
			}
			if _, ok := tb.Types[f.Elem].FieldAt(f.NodeOff, f.Kind.node()); !ok {
				return bad("%s at %d: type %d has no %s at offset %d", f.Kind, f.Off, f.Elem, f.Kind.node(), f.NodeOff)
			}
		}
	}
	if count[KindLock] > 1 || count[KindRefcount] > 1 {
		return bad("more than one bpf_spin_lock or bpf_refcount")
	}
	if hasRoot && count[KindLock] == 0 {
		return bad("a container without a bpf_spin_lock to guard it")
	}
	if count[KindListNode] > 0 && count[KindRBNode] > 0 && count[KindRefcount] == 0 {
		return bad("a list node and an rb node without a bpf_refcount")
	}
	return nil
}

// encode returns the table's stored form.
func (tb *Table) encode() []byte {
	nf := 0
	for _, t := range tb.Types {
		nf += len(t.Fields)
	}
	b := make([]byte, tableHeader+tableRecord*(len(tb.Types)+nf))
	le := binary.LittleEndian
	le.PutUint32(b[0:], tableMagic)
	le.PutUint32(b[4:], tableVersion)
	le.PutUint32(b[8:], uint32(len(tb.Types)))
	le.PutUint32(b[12:], uint32(nf))
	first := 0
	fields := b[tableHeader+tableRecord*len(tb.Types):]
	for i, t := range tb.Types {
		r := b[tableHeader+tableRecord*i:]
		le.PutUint32(r[0:], t.Size)
		le.PutUint32(r[4:], uint32(first))
		le.PutUint32(r[8:], uint32(len(t.Fields)))
		for _, f := range t.Fields {
			fr := fields[tableRecord*first:]
			le.PutUint32(fr[0:], uint32(f.Kind))
			le.PutUint32(fr[4:], f.Off)
			le.PutUint32(fr[8:], f.Elem)
			le.PutUint32(fr[12:], f.NodeOff)
			first++
		}
	}
	return b
}

// decodeTable reads a stored table (from region memory another process
// wrote) and validates it.
func decodeTable(b []byte) (*Table, error) {
	le := binary.LittleEndian
	if len(b) < tableHeader || le.Uint32(b) != tableMagic || le.Uint32(b[4:]) != tableVersion {
		return nil, fmt.Errorf("%w: type table: bad magic or version", ErrCorrupt)
	}
	nt, nf := uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:]))
	if nt == 0 || nt > maxTypes || nf > maxTypes*maxFields || uint64(len(b)) < tableHeader+tableRecord*(nt+nf) {
		return nil, fmt.Errorf("%w: type table: %d types, %d fields in %d bytes", ErrCorrupt, nt, nf, len(b))
	}
	fields := b[tableHeader+tableRecord*nt:]
	tb := &Table{Types: make([]Type, nt)}
	for i := range tb.Types {
		r := b[tableHeader+tableRecord*i:]
		first, n := uint64(le.Uint32(r[4:])), uint64(le.Uint32(r[8:]))
		if n > maxFields || first+n > nf {
			return nil, fmt.Errorf("%w: type table: type %d fields [%d, +%d) of %d", ErrCorrupt, i, first, n, nf)
		}
		t := Type{Size: le.Uint32(r[0:]), Fields: make([]Field, n)}
		for j := range t.Fields {
			fr := fields[tableRecord*(first+uint64(j)):]
			t.Fields[j] = Field{Kind: Kind(le.Uint32(fr[0:])), Off: le.Uint32(fr[4:]), Elem: le.Uint32(fr[8:]), NodeOff: le.Uint32(fr[12:])}
		}
		tb.Types[i] = t
	}
	if err := tb.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return tb, nil
}
