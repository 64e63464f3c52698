package loader_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/loader/loadertest"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/vm"
)

func newRegion(tb testing.TB) *userbpf.Region {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "loader.region")
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20, CPUs: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

func objects(tb testing.TB) []string {
	tb.Helper()
	fs, err := filepath.Glob(loadertest.Path("*.o"))
	if err != nil || len(fs) == 0 {
		tb.Fatalf("no testdata objects: %v", err)
	}
	return fs
}

// TestLoadAll loads every testdata object and checks each program's
// instructions are where they should be.
func TestLoadAll(t *testing.T) {
	r := newRegion(t)
	for _, f := range objects(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".o")
		t.Run(name, func(t *testing.T) {
			c, err := loader.LoadWithOptions(r, f, &loader.Options{Prefix: name + "_"})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Programs) == 0 {
				t.Fatal("no programs")
			}
			for pn, p := range c.Programs {
				if p.VM.Name != pn || len(p.VM.Insns) == 0 || len(p.VM.Maps) != len(p.Spec.MapNames) {
					t.Errorf("program %s: %d insns, %d maps for %d names", pn, len(p.VM.Insns), len(p.VM.Maps), len(p.Spec.MapNames))
				}
				if p.Spec.Section != "tc" || p.Spec.Type != ebpf.SchedCLS || p.Spec.License != "GPL" {
					t.Errorf("program %s: section %q type %v license %q", pn, p.Spec.Section, p.Spec.Type, p.Spec.License)
				}
				for i, mn := range p.Spec.MapNames {
					if p.VM.Maps[i].Handle.(*maps.Map) != c.Maps[mn] {
						t.Errorf("program %s: map %d is not %s", pn, i, mn)
					}
				}
			}
		})
	}
}

// wantHelpers lists the helpers and kfuncs each testdata program calls: the
// host must implement these to run them.
var wantHelpers = map[string][]asm.BuiltinFunc{
	"spinlock_lru/count":     {asm.FnMapLookupElem, asm.FnMapUpdateElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"spinlock_lru/lock_inc":  {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"atomics/bump":           {asm.FnMapLookupElem},
	"ringbuf/produce":        {asm.FnRingbufOutput, asm.FnRingbufReserve, asm.FnRingbufSubmit, asm.FnRingbufDiscard, asm.FnRingbufQuery},
	"mapinmap/record":        {asm.FnMapLookupElem},
	"calls/entry":            {asm.FnMapLookupElem},
	"loops/bounded":          nil,
	"loops/with_bpf_loop":    {asm.FnMapUpdateElem, asm.FnLoop},
	"loops/each_elem":        {asm.FnForEachMapElem},
	"loops/iter_sum":         {asm.FnMapLookupElem},
	"globals/accumulate":     nil,
	"globals/hello":          {asm.FnTracePrintk},
	"legacy/legacy":          {asm.FnMapLookupElem, asm.FnMapUpdateElem},
	"tailcall/entry":         {asm.FnTailCall, asm.FnMapLookupElem},
	"tailcall/target0":       {asm.FnMapLookupElem},
	"tailcall/target1":       {asm.FnMapLookupElem},
	"tailcall/sub_entry":     {asm.FnTailCall},
	"userringbuf/drain":      {asm.FnMapLookupElem, asm.FnDynptrRead, asm.FnDynptrData, asm.FnUserRingbufDrain},
	"spinlock_hash/count":    {asm.FnMapLookupElem, asm.FnMapUpdateElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"spinlock_hash/lock_inc": {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"abort_ok/inc":           {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"abort_ok/emit":          {asm.FnRingbufReserve, asm.FnRingbufSubmit},
	"abort_ok/spin_locked":   {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"abort_ok/spin_reserved": {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock, asm.FnRingbufReserve, asm.FnRingbufSubmit},
	"abort_ok/packet_byte":   {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"abort_bad/double_lock":  {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"abort_bad/oob_store":    {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"abort_bad/ring_oob":     {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock, asm.FnRingbufReserve, asm.FnRingbufSubmit},
	"abort_bad/deep":         {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"abort_bad/helper_panic": {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock, asm.FnGetNumaNodeId},

	"graph/rbtree_add":          {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/rbtree_first_key":    {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/rbtree_drain":        {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/list_push":           {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/list_pop":            {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/refcount":            {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/remove_absent":       {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/array_add":           {asm.FnMapLookupElem, asm.FnSpinLock, asm.FnSpinUnlock},
	"graph/new_drop":            nil,
	"graph_nested/nested_build": {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph_nested/nested_take":  {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph_nested/nested_fault": {asm.FnSpinLock, asm.FnSpinUnlock},
	"graph_nested/hash_add":     {asm.FnMapLookupElem, asm.FnMapUpdateElem, asm.FnSpinLock, asm.FnSpinUnlock},
}

// wantKfuncs lists the kfuncs of the testdata programs that call any,
// sorted.
var wantKfuncs = map[string][]string{
	"loops/iter_sum":            {"bpf_iter_num_destroy", "bpf_iter_num_new", "bpf_iter_num_next"},
	"graph/rbtree_add":          {"bpf_obj_new_impl", "bpf_rbtree_add_impl"},
	"graph/rbtree_first_key":    {"bpf_rbtree_first"},
	"graph/rbtree_drain":        {"bpf_obj_drop_impl", "bpf_rbtree_first", "bpf_rbtree_remove"},
	"graph/list_push":           {"bpf_list_push_back_impl", "bpf_list_push_front_impl", "bpf_obj_new_impl"},
	"graph/list_pop":            {"bpf_list_pop_back", "bpf_list_pop_front", "bpf_obj_drop_impl"},
	"graph/refcount":            {"bpf_list_pop_front", "bpf_list_push_back_impl", "bpf_obj_drop_impl", "bpf_obj_new_impl", "bpf_rbtree_add_impl", "bpf_rbtree_remove", "bpf_refcount_acquire_impl"},
	"graph/remove_absent":       {"bpf_list_pop_front", "bpf_list_push_front_impl", "bpf_obj_drop_impl", "bpf_obj_new_impl", "bpf_rbtree_remove", "bpf_refcount_acquire_impl"},
	"graph/array_add":           {"bpf_obj_new_impl", "bpf_rbtree_add_impl"},
	"graph/new_drop":            {"bpf_obj_drop_impl", "bpf_obj_new_impl"},
	"graph_nested/nested_build": {"bpf_obj_drop_impl", "bpf_obj_new_impl", "bpf_rbtree_add_impl"},
	"graph_nested/nested_take":  {"bpf_obj_drop_impl", "bpf_rbtree_first", "bpf_rbtree_remove"},
	"graph_nested/nested_fault": {"bpf_obj_drop_impl", "bpf_obj_new_impl", "bpf_rbtree_add_impl"},
	"graph_nested/hash_add":     {"bpf_obj_new_impl", "bpf_rbtree_add_impl"},
}

func TestHelpersAndKfuncs(t *testing.T) {
	for _, f := range objects(t) {
		obj := strings.TrimSuffix(filepath.Base(f), ".o")
		spec, err := loader.ParseFile(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		for pn, p := range spec.Programs {
			want, ok := wantHelpers[obj+"/"+pn]
			if !ok {
				t.Errorf("%s/%s: not in wantHelpers (the list of what each testdata program calls, for the host): add it", obj, pn)
				continue
			}
			slices.Sort(want)
			if !slices.Equal(p.Helpers, want) {
				t.Errorf("%s/%s calls %v, want %v", obj, pn, p.Helpers, want)
			}
			var kf []string
			for i, name := range p.Kfuncs {
				kf = append(kf, name)
				if in := p.Insns[i]; in.Op != 0x85 || in.Src != vm.CallKfunc || in.Imm != -1 {
					t.Errorf("%s/%s: kfunc %s at %d is %+v", obj, pn, name, i, in)
				}
			}
			slices.Sort(kf)
			kf = slices.Compact(kf)
			wantK := wantKfuncs[obj+"/"+pn]
			if !slices.Equal(kf, wantK) {
				t.Errorf("%s/%s: kfuncs %v, want %v", obj, pn, kf, wantK)
			}
		}
	}
}

// TestMapSpecs checks the specs match what the C declares.
func TestMapSpecs(t *testing.T) {
	type want struct {
		typ                maps.Type
		key, value, maxEnt uint32
		flags              uint32
		lock               int // -1: none
		global, ro         bool
	}
	cases := map[string]map[string]want{
		"spinlock_lru.o": {
			"counters": {maps.LRUHash, 4, 24, 64, 0, 16, false, false},
			"totals":   {maps.Array, 4, 16, 1, 0, 0, false, false},
			".bss":     {maps.Array, 4, 4, 1, 0, -1, true, false},
		},
		"spinlock_hash.o": {
			"counters": {maps.Hash, 4, 24, 64, 0, 16, false, false},
			"totals":   {maps.Array, 4, 16, 1, 0, 0, false, false},
			".bss":     {maps.Array, 4, 4, 1, 0, -1, true, false},
		},
		"atomics.o": {"stats": {maps.Array, 4, 80, 2, maps.FlagMmapable, -1, false, false}},
		"ringbuf.o": {
			"events": {maps.RingBuf, 0, 0, 4096, 0, -1, false, false},
			".bss":   {maps.Array, 4, 4, 1, 0, -1, true, false},
		},
		"mapinmap.o": {
			"buffers":       {maps.ArrayOfMaps, 4, 4, 2, 0, -1, false, false},
			"buffers.inner": {maps.Array, 4, 8, 4, 0, -1, false, false},
			"buf_a":         {maps.Array, 4, 8, 4, 0, -1, false, false},
			"buf_b":         {maps.Array, 4, 8, 4, 0, -1, false, false},
			"control":       {maps.Array, 4, 4, 1, 0, -1, false, false},
			".bss":          {maps.Array, 4, 4, 1, 0, -1, true, false},
		},
		"globals.o": {
			".data":         {maps.Array, 4, 24, 1, 0, -1, true, false},
			".bss":          {maps.Array, 4, 24, 1, 0, -1, true, false},
			".rodata":       {maps.Array, 4, 41, 1, maps.FlagRdOnlyProg, -1, true, true},
			".rodata.cst16": {maps.Array, 4, 16, 1, maps.FlagRdOnlyProg, -1, true, true},
		},
		"legacy.o": {
			"legacy_counts": {maps.Hash, 4, 8, 8, 0, -1, false, false},
			".bss":          {maps.Array, 4, 4, 1, 0, -1, true, false},
		},
	}
	for obj, wantMaps := range cases {
		spec, err := loader.ParseFile(loadertest.Path(obj), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*loader.MapSpec{}
		for _, ms := range spec.Maps {
			got[ms.ObjName] = ms
		}
		if len(got) != len(wantMaps) {
			t.Errorf("%s: %d maps, want %d", obj, len(got), len(wantMaps))
		}
		for name, w := range wantMaps {
			ms := got[name]
			if ms == nil {
				t.Errorf("%s: no map %s", obj, name)
				continue
			}
			s := ms.Spec
			lock := -1
			if s.HasLock {
				lock = int(s.LockOffset)
			}
			if s.Type != w.typ || s.KeySize != w.key || s.ValueSize != w.value || s.MaxEntries != w.maxEnt ||
				s.Flags != w.flags || lock != w.lock || ms.GlobalData != w.global || ms.ReadOnly != w.ro || ms.Freeze != w.ro {
				t.Errorf("%s: map %s is %+v (global %v ro %v freeze %v), want %+v", obj, name, s, ms.GlobalData, ms.ReadOnly, ms.Freeze, w)
			}
			wantName := name
			if w.global {
				wantName = strings.TrimSuffix(obj, ".o") + name
			}
			if s.Name != wantName {
				t.Errorf("%s: map %s has region name %q, want %q", obj, name, s.Name, wantName)
			}
		}
	}
	// Inner templates come before their outer map, static .values named.
	spec, err := loader.ParseFile(loadertest.Path("mapinmap.o"), nil)
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for i, ms := range spec.Maps {
		idx[ms.ObjName] = i
	}
	if idx["buffers.inner"] > idx["buffers"] {
		t.Error("inner template after its outer map")
	}
	outer := spec.Maps[idx["buffers"]]
	if outer.Inner != spec.Maps[idx["buffers.inner"]] || outer.InnerMaps[0] != "buf_a" || outer.InnerMaps[1] != "buf_b" {
		t.Errorf("buffers: inner %v values %v", outer.Inner, outer.InnerMaps)
	}
}

// TestFindSpinLock checks nested, union, array and duplicate locks on
// BTF built by hand.
func TestFindSpinLock(t *testing.T) {
	u32 := &btf.Int{Name: "u32", Size: 4}
	u64 := &btf.Int{Name: "u64", Size: 8}
	lock := &btf.Struct{Name: "bpf_spin_lock", Size: 4, Members: []btf.Member{{Name: "val", Type: u32}}}
	inner := &btf.Struct{Name: "inner", Size: 8, Members: []btf.Member{{Name: "pad", Type: u32}, {Name: "l", Type: &btf.Typedef{Name: "lock_t", Type: lock}, Offset: 32}}}
	nested := &btf.Struct{Name: "v", Size: 24, Members: []btf.Member{{Name: "a", Type: u64}, {Name: "in", Type: &btf.Const{Type: inner}, Offset: 64}, {Name: "b", Type: u64, Offset: 128}}}
	if off, ok, err := loader.FindSpinLock(nested); err != nil || !ok || off != 12 {
		t.Errorf("nested: %d %v %v, want 12", off, ok, err)
	}
	un := &btf.Union{Name: "u", Size: 8, Members: []btf.Member{{Name: "x", Type: u64}, {Name: "s", Type: inner}}}
	wrap := &btf.Struct{Name: "w", Size: 16, Members: []btf.Member{{Name: "h", Type: u64}, {Name: "u", Type: un, Offset: 64}}}
	if off, ok, err := loader.FindSpinLock(wrap); err != nil || !ok || off != 12 {
		t.Errorf("union: %d %v %v, want 12", off, ok, err)
	}
	if _, ok, err := loader.FindSpinLock(u64); err != nil || ok {
		t.Errorf("no lock: %v %v", ok, err)
	}
	two := &btf.Struct{Name: "two", Size: 8, Members: []btf.Member{{Name: "a", Type: lock}, {Name: "b", Type: lock, Offset: 32}}}
	if _, _, err := loader.FindSpinLock(two); err == nil {
		t.Error("two locks accepted")
	}
	arr := &btf.Struct{Name: "arr", Size: 16, Members: []btf.Member{{Name: "a", Type: &btf.Array{Type: inner, Index: u32, Nelems: 2}}}}
	if _, _, err := loader.FindSpinLock(arr); err == nil {
		t.Error("lock in an array accepted")
	}
}

// TestReuse: loading an object twice reuses its maps (and shares their
// state); an incompatible map of the same name is refused with both specs.
func TestReuse(t *testing.T) {
	r := newRegion(t)
	path := loadertest.Path("spinlock_lru.o")
	c1, err := loader.Load(r, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c1.Reused) != 0 {
		t.Errorf("first load reused %v", c1.Reused)
	}
	key := []byte{1, 0, 0, 0}
	val := make([]byte, 24)
	val[0] = 42
	if err := c1.Maps["counters"].Update(key, val, 0); err != nil {
		t.Fatal(err)
	}
	c2, err := loader.Load(r, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"counters", "totals", ".bss"} {
		if !c2.Reused[n] {
			t.Errorf("second load did not reuse %s", n)
		}
		if c2.Maps[n].ID() != c1.Maps[n].ID() {
			t.Errorf("%s: second load has another map", n)
		}
	}
	got := make([]byte, 24)
	if err := c2.Maps["counters"].Lookup(key, got, 0); err != nil || got[0] != 42 {
		t.Errorf("reused map lost its contents: %v %x", err, got)
	}

	// The HASH build declares counters differently: refused, naming both.
	_, err = loader.Load(r, loadertest.Path("spinlock_hash.o"))
	if !errors.Is(err, loader.ErrIncompatible) {
		t.Fatalf("incompatible map: %v", err)
	}
	for _, s := range []string{"counters", "lru_hash key 4 value 24", "hash key 4 value 24", "bpf_spin_lock at 16"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}

	// .rodata with other constants is refused; the same constants reuse.
	if _, err := loader.Load(r, loadertest.Path("globals.o")); err != nil {
		t.Fatal(err)
	}
	if _, err := loader.Load(r, loadertest.Path("globals.o")); err != nil {
		t.Fatalf("same constants: %v", err)
	}
	_, err = loader.LoadWithOptions(r, loadertest.Path("globals.o"), &loader.Options{Constants: map[string]any{"cfg_mult": uint32(9)}})
	if !errors.Is(err, loader.ErrIncompatible) {
		t.Fatalf("other constants: %v", err)
	}
	// With a prefix, the same object loads beside it.
	c3, err := loader.LoadWithOptions(r, loadertest.Path("globals.o"), &loader.Options{Prefix: "b_", Constants: map[string]any{"cfg_mult": uint32(9)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := c3.Maps[".rodata"].Name(); n != "b_globals.rodata" {
		t.Errorf("prefixed .rodata is %q", n)
	}
}

// TestGlobalData: the arrays hold the sections' contents, .rodata is
// frozen and read-only to programs, and constants are applied.
func TestGlobalData(t *testing.T) {
	r := newRegion(t)
	c, err := loader.LoadWithOptions(r, loadertest.Path("globals.o"), &loader.Options{
		Constants: map[string]any{"cfg_offset": uint64(77), "cfg_name": []byte("abcdefg\x00")}})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) []byte {
		m := c.Maps[name]
		v := make([]byte, m.ValueSize())
		if err := m.Lookup(make([]byte, 4), v, 0); err != nil {
			t.Fatal(err)
		}
		return v
	}
	le := binary.LittleEndian
	data := lookup(".data")
	if le.Uint64(data) != 100 || le.Uint32(data[8:]) != 7 || le.Uint32(data[12:]) != 11 || le.Uint32(data[16:]) != 13 || le.Uint32(data[20:]) != 17 {
		t.Errorf(".data is %x", data)
	}
	if bss := lookup(".bss"); !bytes.Equal(bss, make([]byte, 24)) {
		t.Errorf(".bss is %x", bss)
	}
	ro := lookup(".rodata")
	if le.Uint32(ro) != 3 || le.Uint64(ro[8:]) != 77 || string(ro[16:24]) != "abcdefg\x00" || !bytes.Contains(ro, []byte("userbpf hello %d\x00")) {
		t.Errorf(".rodata is %q", ro)
	}
	cst := lookup(".rodata.cst16")
	if le.Uint32(cst) != 1 || le.Uint32(cst[4:]) != 10 || le.Uint32(cst[8:]) != 100 || le.Uint32(cst[12:]) != 1000 {
		t.Errorf(".rodata.cst16 is %x", cst)
	}
	if !c.Maps[".rodata"].Frozen() || c.Maps[".data"].Frozen() {
		t.Error(".rodata not frozen or .data frozen")
	}
	if err := c.Maps[".rodata"].Update(make([]byte, 4), ro, 0); err == nil {
		t.Error("user space wrote a frozen .rodata")
	}
	p := c.Programs["accumulate"]
	for i, mn := range p.Spec.MapNames {
		ref := p.VM.Maps[i]
		m := c.Maps[mn]
		if ref.ValueAddr == 0 || ref.ValueSize != m.ValueSize() || ref.ReadOnly != strings.HasPrefix(mn, ".rodata") {
			t.Errorf("accumulate: map ref %s is %+v", mn, ref)
		}
	}
	// Every PseudoMapValue load points inside its map's value.
	for i := 0; i < len(p.VM.Insns); i++ {
		in := p.VM.Insns[i]
		if in.Op == 0x18 {
			if in.Src == vm.PseudoMapValue {
				ref := p.VM.Maps[in.Imm]
				if off := uint32(p.VM.Insns[i+1].Imm); off >= ref.ValueSize {
					t.Errorf("insn %d: offset %d past %d", i, off, ref.ValueSize)
				}
			}
			i++
		}
	}
	// Bad constants are errors.
	for _, bad := range []map[string]any{{"nope": uint32(1)}, {"cfg_name": []byte("x")}} {
		if _, err := loader.ParseFile(loadertest.Path("globals.o"), &loader.Options{Constants: bad}); err == nil {
			t.Errorf("constants %v accepted", bad)
		}
	}
}

// TestMapInMap: the template exists, the outer map's static values are
// the object's inner maps.
func TestMapInMap(t *testing.T) {
	r := newRegion(t)
	c, err := loader.Load(r, loadertest.Path("mapinmap.o"))
	if err != nil {
		t.Fatal(err)
	}
	outer := c.Maps["buffers"]
	for i, n := range []string{"buf_a", "buf_b"} {
		in, err := outer.InnerMap(binary.NativeEndian.AppendUint32(nil, uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		if in.ID() != c.Maps[n].ID() {
			t.Errorf("buffers[%d] is %s, want %s", i, in.Name(), n)
		}
	}
	if _, err := r.OpenMap("buffers.inner", 0); err != nil {
		t.Errorf("template: %v", err)
	}
	// A second load reuses all of it.
	c2, err := loader.Load(r, loadertest.Path("mapinmap.o"))
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Reused["buffers"] || !c2.Reused["buf_a"] {
		t.Errorf("reused %v", c2.Reused)
	}
}

// TestRoundTrip: the converted instructions disassemble as cilium/ebpf's
// own encoding of the program, except the map loads' immediates.
func TestRoundTrip(t *testing.T) {
	for _, f := range objects(t) {
		cs, err := ebpf.LoadCollectionSpec(f)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := loader.ParseFile(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		for pn, p := range spec.Programs {
			// cilium's own encoding: map loads keep their relocation
			// placeholders (0), offsets resolved by Marshal.
			insns := slices.Clone(cs.Programs[pn].Instructions)
			var buf bytes.Buffer
			if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
				t.Fatal(err)
			}
			want := loader.Decode(buf.Bytes())
			got := slices.Clone(p.Insns)
			if len(got) != len(want) {
				t.Fatalf("%s/%s: %d insns, want %d", f, pn, len(got), len(want))
			}
			for i := 0; i < len(got); i++ {
				if got[i].Op == 0x18 && (got[i].Src == vm.PseudoMapFD || got[i].Src == vm.PseudoMapValue) {
					// The map index replaces the relocation placeholder.
					if int(got[i].Imm) >= len(p.MapNames) || got[i].Imm < 0 {
						t.Errorf("%s/%s: insn %d: map index %d", f, pn, i, got[i].Imm)
					}
					got[i].Imm = want[i].Imm
				}
				if got[i].Op == 0x85 && got[i].Src == vm.CallKfunc {
					got[i].Imm = want[i].Imm
				}
				if got[i].Op == 0x18 && got[i].Src == 0 && p.Types != nil && i+1 < len(got) &&
					got[i].Imm >= 0 && int(got[i].Imm) < len(p.Types.Types) && got[i+1].Imm == 0 && got[i] != want[i] {
					// bpf_core_type_id_local: the index in the program's
					// type table replaces the BTF type ID.
					got[i].Imm = want[i].Imm
				}
			}
			gd, err := loader.Disassemble(got)
			if err != nil {
				t.Fatal(err)
			}
			wd, err := loader.Disassemble(want)
			if err != nil {
				t.Fatal(err)
			}
			if gd != wd {
				t.Errorf("%s/%s: disassembly differs:\n%s\nwant\n%s", f, pn, gd, wd)
			}
			// Encode/Decode are inverse.
			if !slices.Equal(loader.Decode(loader.Encode(p.Insns)), p.Insns) {
				t.Errorf("%s/%s: Encode/Decode do not round-trip", f, pn)
			}
		}
	}
}

// TestCalls: bpf-to-bpf calls and callbacks land on the subprograms'
// first instructions after flattening.
func TestCalls(t *testing.T) {
	cases := map[string][]string{
		"calls.o": {"entry"},
		"loops.o": {"with_bpf_loop", "each_elem"},
	}
	for obj, progs := range cases {
		cs, err := ebpf.LoadCollectionSpec(loadertest.Path(obj))
		if err != nil {
			t.Fatal(err)
		}
		spec, err := loader.ParseFile(loadertest.Path(obj), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, pn := range progs {
			// Raw offsets of the symbols in the flattened stream.
			syms := map[int]string{}
			iter := cs.Programs[pn].Instructions.Iterate()
			for iter.Next() {
				if s := iter.Ins.Symbol(); s != "" {
					syms[int(iter.Offset)] = s
				}
			}
			refs := map[int]string{}
			iter = cs.Programs[pn].Instructions.Iterate()
			for iter.Next() {
				if iter.Ins.IsFunctionReference() {
					refs[int(iter.Offset)] = iter.Ins.Reference()
				}
			}
			if len(refs) == 0 {
				t.Fatalf("%s/%s: no function references", obj, pn)
			}
			insns := spec.Programs[pn].Insns
			for at, ref := range refs {
				in := insns[at]
				isCall := in.Op == 0x85 && in.Src == vm.CallLocal
				isFunc := in.Op == 0x18 && in.Src == loader.PseudoFunc
				if !isCall && !isFunc {
					t.Errorf("%s/%s: insn %d is %+v, want a call or a PseudoFunc load", obj, pn, at, in)
					continue
				}
				target := at + 1 + int(in.Imm)
				if syms[target] != ref {
					t.Errorf("%s/%s: insn %d targets %d (%q), want %q", obj, pn, at, target, syms[target], ref)
				}
			}
		}
	}
}

// TestBadObjects: malformed or unsupported input is an error naming the
// problem, never a panic.
func TestBadObjects(t *testing.T) {
	good, err := os.ReadFile(loadertest.Path("calls.o"))
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("not an elf file at all"),
		"truncated": good[:len(good)/2],
		"elf magic": append([]byte("\x7fELF"), make([]byte, 60)...),
	}
	for name, b := range inputs {
		_, err := loader.Parse(bytes.NewReader(b), "bad", nil)
		if !errors.Is(err, loader.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// A host without a helper refuses programs calling it, naming it.
	_, err = loader.ParseFile(loadertest.Path("ringbuf.o"), &loader.Options{Helper: func(fn asm.BuiltinFunc) bool { return fn != asm.FnRingbufQuery }})
	if !errors.Is(err, loader.ErrUnsupported) || !strings.Contains(err.Error(), "FnRingbufQuery") || !strings.Contains(err.Error(), "instruction ") {
		t.Errorf("missing helper: %v", err)
	}
	// Unknown kfuncs are refused at resolution, naming them.
	r := newRegion(t)
	c, err := loader.Load(r, loadertest.Path("loops.o"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Programs["iter_sum"]
	err = p.ResolveKfuncs(func(name string) (int32, bool) { return 7, name != "bpf_iter_num_next" })
	if !errors.Is(err, loader.ErrUnsupported) || !strings.Contains(err.Error(), "bpf_iter_num_next") {
		t.Errorf("unknown kfunc: %v", err)
	}
	ids := map[string]int32{"bpf_iter_num_new": 1, "bpf_iter_num_next": 2, "bpf_iter_num_destroy": 3}
	if err := p.ResolveKfuncs(func(name string) (int32, bool) { id, ok := ids[name]; return id, ok }); err != nil {
		t.Fatal(err)
	}
	for i, name := range p.Spec.Kfuncs {
		if p.VM.Insns[i].Imm != ids[name] {
			t.Errorf("kfunc %s at %d has id %d", name, i, p.VM.Insns[i].Imm)
		}
		if p.Spec.Insns[i].Imm != -1 {
			t.Errorf("ResolveKfuncs changed the spec's instructions")
		}
	}
}

// FuzzLoad: arbitrary bytes as an ELF object give an error or a
// collection, never a panic.
func FuzzLoad(f *testing.F) {
	for _, o := range objects(f) {
		b, err := os.ReadFile(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r := newRegion(f)
	n := 0
	f.Fuzz(func(t *testing.T, b []byte) {
		n++ // each success loads under its own prefix
		spec, err := loader.Parse(bytes.NewReader(b), "fuzz", &loader.Options{Prefix: "f" + itoa(n) + "_"})
		if err != nil {
			return
		}
		c, err := spec.Load(r)
		if err != nil {
			return
		}
		for _, p := range c.Programs {
			if len(p.VM.Insns) == 0 {
				t.Errorf("program %s without instructions", p.Spec.Name)
			}
		}
	})
}

func itoa(n int) string {
	var b []byte
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// TestUnsupported: hand-built specs with what userbpf does not implement
// give errors naming it (and the instruction), never a panic.
func TestUnsupported(t *testing.T) {
	base := func() *ebpf.CollectionSpec {
		return &ebpf.CollectionSpec{
			Maps: map[string]*ebpf.MapSpec{
				"arr":  {Name: "arr", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4},
				"hash": {Name: "hash", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4},
			},
			Programs: map[string]*ebpf.ProgramSpec{},
		}
	}
	prog := func(insns ...asm.Instruction) *ebpf.ProgramSpec {
		insns[0] = insns[0].WithSymbol("p")
		return &ebpf.ProgramSpec{Name: "p", Type: ebpf.SocketFilter, SectionName: "socket", License: "GPL", Instructions: insns}
	}
	exit := []asm.Instruction{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	cases := []struct {
		name string
		edit func(cs *ebpf.CollectionSpec)
		want []string
	}{
		{"sockmap", func(cs *ebpf.CollectionSpec) {
			cs.Maps["socks"] = &ebpf.MapSpec{Name: "socks", Type: ebpf.SockMap, KeySize: 4, ValueSize: 4, MaxEntries: 4}
		}, []string{"map socks", "SockMap"}},
		{"perf array", func(cs *ebpf.CollectionSpec) {
			cs.Maps["ev"] = &ebpf.MapSpec{Name: "ev", Type: ebpf.PerfEventArray, KeySize: 4, ValueSize: 4}
		}, []string{"map ev", "PerfEventArray"}},
		{"unknown section", func(cs *ebpf.CollectionSpec) {
			p := prog(exit...)
			p.Type, p.SectionName = ebpf.UnspecifiedProgram, "weird/section"
			cs.Programs["p"] = p
		}, []string{"program p", `section "weird/section"`}},
		{"unknown helper", func(cs *ebpf.CollectionSpec) {
			cs.Programs["p"] = prog(asm.Mov.Imm(asm.R0, 0), asm.BuiltinFunc(9999).Call(), asm.Return())
		}, []string{"program p", "instruction 1", "unknown helper 9999"}},
		{"unknown map", func(cs *ebpf.CollectionSpec) {
			cs.Programs["p"] = prog(append([]asm.Instruction{asm.LoadMapPtr(asm.R1, 0).WithReference("nope")}, exit...)...)
		}, []string{"instruction 0", `"nope"`}},
		{"value of a hash", func(cs *ebpf.CollectionSpec) {
			cs.Programs["p"] = prog(append([]asm.Instruction{asm.Mov.Imm(asm.R0, 0), asm.LoadMapValue(asm.R1, 0, 0).WithReference("hash")}, exit...)...)
		}, []string{"instruction 1", "direct value access", "hash"}},
		{"value offset", func(cs *ebpf.CollectionSpec) {
			cs.Maps["one"] = &ebpf.MapSpec{Name: "one", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
			cs.Programs["p"] = prog(append([]asm.Instruction{asm.LoadMapValue(asm.R1, 0, 8).WithReference("one")}, exit...)...)
		}, []string{"instruction 0", "offset 8"}},
		{"undefined function", func(cs *ebpf.CollectionSpec) {
			cs.Programs["p"] = prog(append([]asm.Instruction{asm.Call.Label("missing")}, exit...)...)
		}, []string{"instruction 0", `"missing"`}},
		{"ksym", func(cs *ebpf.CollectionSpec) {
			cs.Programs["p"] = prog(append([]asm.Instruction{asm.LoadImm(asm.R1, 0, asm.DWord).WithReference("bpf_prog_active")}, exit...)...)
		}, []string{"instruction 0", "bpf_prog_active"}},
		{"kconfig", func(cs *ebpf.CollectionSpec) {
			cs.Maps[".kconfig"] = &ebpf.MapSpec{Name: ".kconfig", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
		}, []string{".kconfig", "__kconfig"}},
		{"no inner template", func(cs *ebpf.CollectionSpec) {
			cs.Maps["outer"] = &ebpf.MapSpec{Name: "outer", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2}
		}, []string{"map outer", "inner map template"}},
		{"static values to a stranger", func(cs *ebpf.CollectionSpec) {
			cs.Maps["outer"] = &ebpf.MapSpec{Name: "outer", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2,
				InnerMap: cs.Maps["arr"].Copy(), Contents: []ebpf.MapKV{{Key: uint32(0), Value: "stranger"}}}
		}, []string{"map outer", `"stranger"`}},
	}
	for _, c := range cases {
		cs := base()
		c.edit(cs)
		_, err := loader.FromCollectionSpec(cs, "t", nil)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	// The base with a trivial program is fine, and loads.
	cs := base()
	cs.Programs["p"] = prog(exit...)
	o, err := loader.FromCollectionSpec(cs, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Load(newRegion(t)); err != nil {
		t.Fatal(err)
	}
}
