package vm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/userbpf/userbpf/internal/isa"
)

// objProgram converts a program of a clang-built object, as cilium/ebpf
// parsed it, into a Program whose data sections (.data, .bss, .rodata)
// are Go buffers: the little the loader does for the tests here.
func objProgram(t *testing.T, spec *ebpf.CollectionSpec, name string) (*Program, map[string][]byte) {
	t.Helper()
	ps := spec.Programs[name]
	if ps == nil {
		t.Fatalf("no program %q", name)
	}
	insns := slices.Clone(ps.Instructions)
	var names []string
	values := map[string][]byte{}
	var maps []MapRef
	iter := insns.Iterate()
	var patches [][2]int // raw offset, map index
	for iter.Next() {
		ins := iter.Ins
		if !ins.IsLoadFromMap() {
			continue
		}
		ref := ins.Reference()
		idx := slices.Index(names, ref)
		if idx < 0 {
			ms := spec.Maps[ref]
			if ms == nil || len(ms.Contents) != 1 {
				t.Fatalf("map %q is not a data section", ref)
			}
			buf := alignedBuf(int(ms.ValueSize))
			copy(buf, ms.Contents[0].Value.([]byte))
			values[ref] = buf
			names = append(names, ref)
			maps = append(maps, MapRef{Handle: ref, ValueAddr: uintptr(unsafe.Pointer(&buf[0])), ValueSize: ms.ValueSize, ReadOnly: ref == ".rodata"})
			idx = len(names) - 1
		}
		patches = append(patches, [2]int{int(iter.Offset), idx})
		*iter.Ins = ins.WithReference("") // keep Marshal from resolving it
	}
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	out, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patches {
		out[p[0]].Imm = int32(p[1])
	}
	return &Program{Name: name, Insns: out, Maps: maps}, values
}

// TestClangObject runs testdata/v4.o (see v4.c) in the kernel and in the
// VM and compares the return value and every result in .bss.
func TestClangObject(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("testdata/v4.o")
	if err != nil {
		t.Fatal(err)
	}
	p, values := objProgram(t, spec, "run")
	if err := Validate(p); err != nil {
		t.Fatalf("%v\n%s", err, Disassemble(p.Insns))
	}
	if !slices.ContainsFunc(p.Insns, func(ins Insn) bool { return ins.Op == isa.OpLdImm64 && ins.Src == PseudoFunc }) {
		t.Fatal("no PseudoFunc load: clang's &callback was not kept")
	}
	r0, err := p.Run(NewMachine(), make([]byte, 64))
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	vmBss := values[".bss"]
	t.Logf("vm: r0 %d, out[0..4] %v", int32(r0), binary.LittleEndian.Uint64(vmBss))

	needKernel(t)
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("%+v", ve)
		}
		t.Fatal(err)
	}
	defer coll.Close()
	kret, err := coll.Programs["run"].Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	kBss := make([]byte, len(vmBss))
	if err := coll.Maps[".bss"].Lookup(uint32(0), &kBss); err != nil {
		t.Fatal(err)
	}
	if uint32(r0) != kret {
		t.Errorf("return value: kernel %d, vm %d", int32(kret), int32(r0))
	}
	for i := 0; i+8 <= len(kBss); i += 8 {
		k, v := binary.LittleEndian.Uint64(kBss[i:]), binary.LittleEndian.Uint64(vmBss[i:])
		if k != v {
			t.Errorf(".bss+%d: kernel %#x, vm %#x", i, k, v)
		}
	}
	if testing.Verbose() {
		var s string
		for i := 0; i+8 <= len(kBss) && i < 8*40; i += 8 {
			s += fmt.Sprintf("%d ", int64(binary.LittleEndian.Uint64(kBss[i:])))
		}
		t.Logf("kernel out[]: %s", s)
	}
}
