/* A loop that steps a pointer through a map value with a run-time trip
 * count (clang turns v->slots[i] into p += 8): the pointer's offset is
 * variable and unbounded at the loop head, and the analysis must still
 * reach a fixpoint. The kernel accepts it (it walks the 32 iterations). */
#include "common_maps.h"

struct slots {
	__u64 slot[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slots);
} table SEC(".maps");

SEC("tc")
int loop_ptr(struct __sk_buff *skb)
{
	__u32 k = 0, n = skb->mark;
	struct slots *v = bpf_map_lookup_elem(&table, &k);

	if (!v)
		return 0;
	if (n > 32)
		n = 32;
	for (__u32 i = 0; i < n; i++)
		v->slot[i] = i * i;
	return n;
}

char LICENSE[] SEC("license") = "GPL";
