package verifier_test

import (
	"errors"
	"fmt"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/verifier"
	"github.com/userbpf/userbpf/vm"
)

// A lookup whose result is used without a NULL check: the error names the
// instruction, the source line and the fix.
func ExampleVerify() {
	counters := &verifier.Map{Name: "counters", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16}
	p := &verifier.Program{
		Name: "count",
		Insns: []vm.Insn{
			{Op: 0x62, Dst: 10, Off: -4},                // *(u32 *)(r10 - 4) = 0
			{Op: 0x18, Dst: 1, Src: vm.PseudoMapFD}, {}, // r1 = &counters
			{Op: 0xbf, Dst: 2, Src: 10},         // r2 = r10
			{Op: 0x07, Dst: 2, Imm: -4},         // r2 += -4
			{Op: 0x85, Imm: vm.FnMapLookupElem}, // r0 = bpf_map_lookup_elem(r1, r2)
			{Op: 0x79, Dst: 1, Src: 0},          // r1 = *(u64 *)(r0 + 0)
			{Op: 0x07, Dst: 1, Imm: 1},          // r1 += 1
			{Op: 0x7b, Dst: 0, Src: 1},          // *(u64 *)(r0 + 0) = r1
			{Op: 0xb7, Dst: 0}, {Op: 0x95},      // return 0
		},
		Maps:  []*verifier.Map{counters},
		Lines: []verifier.Line{6: {File: "count.c", Num: 12, Text: "(*v)++;"}},
	}
	err := verifier.Verify(p, nil)
	fmt.Println(err)
	fmt.Println(errors.Is(err, verifier.ErrNullCheck))
	// Output:
	// insn 6 (count.c:12 "(*v)++;"): R0 is map_value_or_null, expected map_value: check it for NULL first
	// true
}
