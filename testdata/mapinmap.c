/* Map-in-map double buffering: the program counts into the inner array
 * that the control map selects; user space flips the control word and
 * drains the other buffer, as a lock-free double buffer does. */
#include "common.h"

struct buffer {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} buf_a SEC(".maps"), buf_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct buffer);
} buffers SEC(".maps") = {
	.values = { &buf_a, &buf_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* the active buffer: 0 or 1 */
} control SEC(".maps");

__u32 calls; /* .bss */

/* record: slot calls % 4 of the active buffer += calls. Returns
 * active * 1000 + the slot's new value, or 99999 if a lookup failed. */
SEC("tc")
int record(struct __sk_buff *skb)
{
	__u32 zero = 0, slot;
	__u32 *active;
	__u64 *v;
	void *buf;

	active = bpf_map_lookup_elem(&control, &zero);
	if (!active)
		return 99999;
	buf = bpf_map_lookup_elem(&buffers, active);
	if (!buf)
		return 99999;
	calls++;
	slot = calls % 4;
	v = bpf_map_lookup_elem(buf, &slot);
	if (!v)
		return 99999;
	__sync_fetch_and_add(v, calls);
	return *active * 1000 + *v;
}

char LICENSE[] SEC("license") = "GPL";
