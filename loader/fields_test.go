package loader

import (
	"path/filepath"
	"testing"

	"github.com/userbpf/userbpf/verifier"
)

// The graph fields and bpf_obj_new types the verifier gets: the rbtree
// root in .data.A next to its lock, the node type it contains, and the
// type behind the local_type_id relocation of bpf_obj_new.
func TestVerifierProgramGraphFields(t *testing.T) {
	spec, err := ParseFile(filepath.Join("..", "testdata", "verifier", "good_rbtree.o"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.VerifierProgram("good_rbtree")
	if err != nil {
		t.Fatal(err)
	}
	var a *verifier.Map
	for _, m := range p.Maps {
		if m.Name == ".data.A" {
			a = m
		}
	}
	if a == nil {
		t.Fatalf("no .data.A among %d maps", len(p.Maps))
	}
	if !a.HasLock || a.LockOff != 0 || len(a.Fields) != 1 {
		t.Fatalf(".data.A: lock %v at %d, fields %+v", a.HasLock, a.LockOff, a.Fields)
	}
	f := a.Fields[0]
	if f.Kind != verifier.RBRoot || f.Offset != 8 || f.Elem == nil || f.Elem.Name != "node_data" || f.NodeOff != 16 {
		t.Fatalf("root %+v", f)
	}
	if f.Elem.Size != 48 || len(f.Elem.Fields) != 1 || f.Elem.Fields[0].Kind != verifier.RBNode {
		t.Fatalf("node_data %+v", f.Elem)
	}
	if len(p.ObjTypes) != 1 {
		t.Fatalf("%d bpf_obj_new types, want 1", len(p.ObjTypes))
	}
	for at, ot := range p.ObjTypes {
		if ot != f.Elem {
			t.Errorf("insn %d: bpf_obj_new of %s, want the root's node_data", at, ot.Name)
		}
		// The immediate is the type's index in the program's graph table.
		ps := spec.Programs["good_rbtree"]
		got := ps.Insns[at].Imm
		if ps.Types == nil || got < 0 || int(got) >= len(ps.Types.Types) || ps.Types.Types[got].Name != "node_data" {
			t.Errorf("insn %d: immediate %d does not index node_data in the program's graph table %+v", at, got, ps.Types)
		}
	}
	if len(p.Lines) == 0 || p.Funcs[0].Name != "good_rbtree" {
		t.Errorf("line info %d entries, funcs %+v", len(p.Lines), p.Funcs)
	}
}
