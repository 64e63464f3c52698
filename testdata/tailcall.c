/* Tail calls through a PROG_ARRAY: entry jumps to the program in slot
 * (counter % 2); each target counts its runs in a map and returns a
 * distinct value. An empty slot makes bpf_tail_call fail, and entry then
 * returns 7 itself. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jumps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

__u32 counter;

static __always_inline void hit(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int target0(struct __sk_buff *skb)
{
	hit(0);
	return 100;
}

SEC("tc")
int target1(struct __sk_buff *skb)
{
	hit(1);
	return 101;
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	__u32 slot = counter++ % 2;

	bpf_tail_call(skb, &jumps, slot);
	hit(3);
	return 7;
}

/* A tail call from a subprogram replaces the subprogram: the target's
 * return value comes back to the subprogram's caller (kernel v5.10+). */
static __attribute__((noinline)) int jump_from_sub(struct __sk_buff *skb, __u32 slot)
{
	bpf_tail_call(skb, &jumps, slot);
	return 7 + slot; /* not a constant, or clang folds it into the caller */
}

SEC("tc")
int sub_entry(struct __sk_buff *skb)
{
	__u32 slot = counter++ % 2;

	return 1000 + jump_from_sub(skb, slot);
}

char _license[] SEC("license") = "GPL";
