/* A value with an array next to its lock, for variable-index accesses. */
#include "../common.h"

struct slots {
	__u64 before[4];           /* offsets 0..31 */
	struct bpf_spin_lock lock; /* offset 32 */
	__u32 pad;
	__u64 after[4];            /* offsets 40..71 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slots);
} slot_map SEC(".maps");
