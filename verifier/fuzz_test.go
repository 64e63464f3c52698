package verifier

import (
	"testing"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/vm"
)

// fuzzMaps give map loads in fuzzed programs something to refer to.
var fuzzMaps = []*Map{
	{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 24, MaxEntries: 4, HasLock: true, LockOff: 8},
	{Name: "rb", Type: maps.RingBuf, MaxEntries: 4096},
	{Name: ".data", Type: maps.Array, KeySize: 4, ValueSize: 64, MaxEntries: 1, GlobalData: true,
		HasLock: true, LockOff: 0, Fields: []Field{{Kind: RBRoot, Offset: 8, Elem: fuzzObj, NodeOff: 16}}},
}

var fuzzObj = &ObjType{Name: "n", Size: 48, Fields: []Field{{Kind: RBNode, Offset: 16}}}

// FuzzVerify runs the analysis (without Verify's recover) on arbitrary
// instruction streams: it must return, never panic.
func FuzzVerify(f *testing.F) {
	f.Add(vm.Encode([]vm.Insn{{Op: 0xb7}, {Op: 0x95}}))
	f.Add(vm.Encode([]vm.Insn{
		{Op: 0x18, Dst: 1, Src: vm.PseudoMapFD}, {}, {Op: 0xbf, Dst: 2, Src: 10}, {Op: 0x07, Dst: 2, Imm: -4},
		{Op: 0x62, Dst: 10, Off: -4}, {Op: 0x85, Imm: 1}, {Op: 0x15, Dst: 0, Off: 4}, {Op: 0xbf, Dst: 6, Src: 0},
		{Op: 0x07, Dst: 6, Imm: 8}, {Op: 0xbf, Dst: 1, Src: 6}, {Op: 0x85, Imm: 93}, {Op: 0xbf, Dst: 1, Src: 6},
		{Op: 0x85, Imm: 94}, {Op: 0xb7}, {Op: 0x95},
	}))
	f.Add(vm.Encode([]vm.Insn{{Op: 0x85, Src: 1, Imm: 1}, {Op: 0x95}, {Op: 0xb7}, {Op: 0x95}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, err := vm.Decode(b[:len(b)/8*8])
		if err != nil || len(insns) > 4096 {
			return
		}
		p := &Program{Name: "fuzz", Insns: insns, Maps: fuzzMaps,
			Kfuncs: map[int]string{}, ObjTypes: map[int]*ObjType{}}
		names := []string{"bpf_obj_new_impl", "bpf_obj_drop_impl", "bpf_rbtree_add_impl", "bpf_rbtree_first", "bpf_rbtree_remove", "bpf_iter_num_new", "bpf_iter_num_next"}
		for i, in := range insns {
			if in.Op == 0x85 && in.Src == vm.CallKfunc {
				p.Kfuncs[i] = names[uint32(in.Imm)%uint32(len(names))]
			}
			if in.Op == 0x18 && in.Src == 0 {
				p.ObjTypes[i] = fuzzObj
			}
		}
		v := &verifier{p: p}
		_ = v.run()
	})
}
