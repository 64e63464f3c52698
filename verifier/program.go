package verifier

import (
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/vm"
)

// Program is what the verifier checks: plain data the loader builds from
// an object's program.
type Program struct {
	// Name is the program's name, for messages.
	Name string
	// Type is the program type (the kernel's enum bpf_prog_type). It picks
	// the context's layout: which 4-byte fields load packet pointers
	// (struct __sk_buff data, data_end, data_meta; struct xdp_md's). Zero
	// means unknown: every context field is a number.
	Type uint32
	// Insns are the instructions: LD_IMM64 map loads (vm.PseudoMapFD,
	// vm.PseudoMapValue) hold indexes into Maps, vm.PseudoFunc loads and
	// bpf-to-bpf calls hold relative offsets, kfunc calls are named by
	// Kfuncs (their Imm is ignored).
	Insns []vm.Insn
	// Maps are the maps the program references, by index.
	Maps []*Map
	// Kfuncs names the kfunc calls: instruction index → kfunc name.
	Kfuncs map[int]string
	// Funcs are the subprogram entry points the loader knows (instruction
	// index → function), for messages and the global/static rule. Entries
	// the program calls but that are missing here are found anyway.
	Funcs map[int]Func
	// Lines is the BTF line info: Lines[i] is the source line instruction
	// i starts (a zero Line when the object has none for it).
	Lines []Line
	// ObjTypes are the program-BTF types of bpf_obj_new: the index of an
	// LD_IMM64 that loads a local type id (a CO-RE local_type_id
	// relocation) → the type.
	ObjTypes map[int]*ObjType
}

// Func is a subprogram.
type Func struct {
	// Name is the C function's name.
	Name string
	// Global says the function has global linkage (the kernel verifies it
	// on its own and forbids calling it while a lock is held).
	Global bool
}

// Line is one line of source code, from BTF line info.
type Line struct {
	File string // file name, as the compiler saw it
	Num  int    // line number, from 1; 0 means no line
	Text string // the line's text
}

// Map is what the verifier knows about a map the program references.
type Map struct {
	// Name is the map's name in the object.
	Name       string
	Type       maps.Type
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	// HasLock and LockOff: the value's struct bpf_spin_lock.
	HasLock bool
	LockOff uint32
	// ReadOnly says programs may not write the map's values (.rodata,
	// BPF_F_RDONLY_PROG).
	ReadOnly bool
	// GlobalData says the map holds a data section (one value, which
	// programs address directly with vm.PseudoMapValue loads).
	GlobalData bool
	// Fields are the graph fields of the value: bpf_list_head and
	// bpf_rb_root roots (and nodes or refcounts, if any).
	Fields []Field
	// Inner is the inner-map template of a map-in-map.
	Inner *Map
}

// FieldKind is the kind of a special field of a value or object.
type FieldKind uint8

// Special fields the graph API uses.
const (
	ListHead FieldKind = iota + 1 // struct bpf_list_head (16 bytes)
	ListNode                      // struct bpf_list_node (24 bytes)
	RBRoot                        // struct bpf_rb_root (16 bytes)
	RBNode                        // struct bpf_rb_node (32 bytes)
	Refcount                      // struct bpf_refcount (4 bytes)
)

// Size is the field's size in bytes.
func (k FieldKind) Size() uint32 {
	switch k {
	case ListHead, RBRoot:
		return 16
	case ListNode:
		return 24
	case RBNode:
		return 32
	case Refcount:
		return 4
	}
	return 0
}

func (k FieldKind) String() string {
	switch k {
	case ListHead:
		return "bpf_list_head"
	case ListNode:
		return "bpf_list_node"
	case RBRoot:
		return "bpf_rb_root"
	case RBNode:
		return "bpf_rb_node"
	case Refcount:
		return "bpf_refcount"
	}
	return "field"
}

// Field is a special field of a map value or an allocated object.
type Field struct {
	Kind   FieldKind
	Offset uint32
	// Elem is, for a root (ListHead, RBRoot), the type of the objects it
	// holds (from its "contains:type:node" declaration tag), and NodeOff
	// the offset of their node field.
	Elem    *ObjType
	NodeOff uint32
}

// ObjType is a struct type of the program's BTF that bpf_obj_new
// allocates, or that a graph root contains.
type ObjType struct {
	Name string
	Size uint32
	// HasLock and LockOff: the object's own struct bpf_spin_lock, which
	// guards roots inside the object.
	HasLock bool
	LockOff uint32
	// Fields are its special fields (nodes, roots, a refcount).
	Fields []Field
	// Type is the BTF type.
	Type btf.Type
}

// field returns the field at offset off, or nil.
func fieldAt(fs []Field, off int64) *Field {
	for i := range fs {
		if int64(fs[i].Offset) == off {
			return &fs[i]
		}
	}
	return nil
}

// overlapsSpecial reports the special field (or lock) that the byte range
// [off, off+size) overlaps, if any.
func overlapsSpecial(fs []Field, hasLock bool, lockOff uint32, off, size int64) (string, bool) {
	if hasLock && off < int64(lockOff)+4 && int64(lockOff) < off+size {
		return "bpf_spin_lock", true
	}
	for _, f := range fs {
		if off < int64(f.Offset)+int64(f.Kind.Size()) && int64(f.Offset) < off+size {
			return f.Kind.String(), true
		}
	}
	return "", false
}
