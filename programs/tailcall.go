package programs

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/shm"
	"github.com/userbpf/userbpf/vm"
)

const fnTailCall = 12

func init() {
	maps.ProgramExists = func(m *maps.Map, id uint32) bool {
		_, ok := nameByID(m.Region(), id)
		return ok
	}
}

// byID caches the programs tail calls reach, per region and ID.
var byID sync.Map // idKey → *Program

type idKey struct {
	region *shm.Region
	id     uint32
}

// helperTailCall is bpf_tail_call(ctx, prog_array, index): on success the
// program continues as the program in the slot, from its first instruction;
// on failure (index past the end, empty slot, too many tail calls) it
// continues after the call, as in the kernel.
func helperTailCall(m *vm.Machine, _, mref, index, _, _ uint64) (uint64, error) {
	mp, ok := mapArg(m, mref)
	if !ok || mp.Type() != maps.ProgArray {
		return 0, fmt.Errorf("bpf_tail_call: R2 %#x is not a PROG_ARRAY", mref)
	}
	id := mp.TailCallTarget(uint32(index))
	if id == 0 {
		return neg(unix.ENOENT), nil
	}
	h := hostOf(m)
	k := idKey{h.region, id}
	var target *Program
	if v, ok := byID.Load(k); ok {
		target = v.(*Program)
	} else {
		name, ok := nameByID(h.region, id)
		if !ok {
			return neg(unix.ENOENT), nil
		}
		p, err := Open(h.region, h.rcu, name)
		if err != nil {
			return neg(unix.ENOENT), nil
		}
		v, _ := byID.LoadOrStore(k, p)
		target = v.(*Program)
	}
	if target.Disabled() { // as an empty slot: the caller continues
		return neg(unix.ENOENT), nil
	}
	if !m.TailCall(target.vm) {
		return neg(unix.E2BIG), nil
	}
	return 0, nil
}
