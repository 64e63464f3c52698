package programs

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/vm"
)

// Kfuncs are the kfuncs programs may call, by name; the loader resolves a
// program's kfunc calls to these ids.
var kfuncIDs = map[string]int32{
	"bpf_iter_num_new":     1,
	"bpf_iter_num_next":    2,
	"bpf_iter_num_destroy": 3,

	"bpf_obj_new_impl":          10,
	"bpf_obj_drop_impl":         11,
	"bpf_refcount_acquire_impl": 12,
	"bpf_list_push_front_impl":  13,
	"bpf_list_push_back_impl":   14,
	"bpf_list_pop_front":        15,
	"bpf_list_pop_back":         16,
	"bpf_rbtree_add_impl":       17,
	"bpf_rbtree_first":          18,
	"bpf_rbtree_remove":         19,
}

// KfuncID resolves a kfunc name (for loader.Program.ResolveKfuncs).
func KfuncID(name string) (int32, bool) {
	id, ok := kfuncIDs[name]
	return id, ok
}

// Kfuncs returns the kfunc table.
func Kfuncs() vm.KfuncTable {
	return vm.KfuncTable{
		1: kfIterNumNew,
		2: kfIterNumNext,
		3: kfIterNumDestroy,

		10: kfObjNew,
		11: kfObjDrop,
		12: kfRefcountAcquire,
		13: kfListPushFront,
		14: kfListPushBack,
		15: kfListPopFront,
		16: kfListPopBack,
		17: kfRBTreeAdd,
		18: kfRBTreeFirst,
		19: kfRBTreeRemove,
	}
}

// An open-coded numeric iterator (struct bpf_iter_num, 8 bytes on the
// program's stack) is, as in the kernel, { s32 cur; s32 end; }.
func iterArg(m *vm.Machine, addr uint64, name string) ([]byte, error) {
	b, ok := m.Bytes(addr, 8, true)
	if !ok {
		return nil, fmt.Errorf("%s: %#x is not an iterator the program may write", name, addr)
	}
	return b, nil
}

func kfIterNumNew(m *vm.Machine, it, start, end, _, _ uint64) (uint64, error) {
	b, err := iterArg(m, it, "bpf_iter_num_new")
	if err != nil {
		return 0, err
	}
	s, e := int64(int32(start)), int64(int32(end))
	if s > e {
		clear(b)
		return neg(unix.EINVAL), nil
	}
	if e-s > 1<<23 { // BPF_MAX_LOOPS
		clear(b)
		return neg(unix.E2BIG), nil
	}
	binary.NativeEndian.PutUint32(b, uint32(int32(s-1)))
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(e)))
	return 0, nil
}

func kfIterNumNext(m *vm.Machine, it, _, _, _, _ uint64) (uint64, error) {
	b, err := iterArg(m, it, "bpf_iter_num_next")
	if err != nil {
		return 0, err
	}
	cur, end := int32(binary.NativeEndian.Uint32(b)), int32(binary.NativeEndian.Uint32(b[4:]))
	if int64(cur)+1 >= int64(end) {
		clear(b)
		return 0, nil
	}
	binary.NativeEndian.PutUint32(b, uint32(cur+1))
	return it, nil // &cur, the first word of the iterator
}

func kfIterNumDestroy(m *vm.Machine, it, _, _, _, _ uint64) (uint64, error) {
	b, err := iterArg(m, it, "bpf_iter_num_destroy")
	if err != nil {
		return 0, err
	}
	clear(b)
	return 0, nil
}
