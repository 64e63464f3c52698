/* bpf-to-bpf calls: static __noinline subprograms three deep, one with
 * five arguments, one writing through a pointer into its caller's stack,
 * and a global (separately verified) function. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} vals SEC(".maps");

static __noinline __u64 mix5(__u64 a, __u64 b, __u64 c, __u64 d, __u64 e)
{
	return a * 31 + b * 17 + c * 7 + d * 3 + e;
}

static __noinline __u64 square_plus(__u64 x, __u64 *out)
{
	__u64 sq = x * x;

	*out = sq + 1; /* the caller's stack */
	return mix5(x, sq, sq >> 1, x ^ 0x55, 9);
}

static __noinline __u64 fold(__u32 key)
{
	__u64 local = 0, r;
	__u64 *v = bpf_map_lookup_elem(&vals, &key);

	if (!v)
		return 0;
	r = square_plus(*v, &local);
	*v = r % 1000003;
	return r + local;
}

/* A global function: the kernel verifies it once for any argument. */
__noinline int clamp_add(int a, int b)
{
	int s = a + b;

	if (s > 1000000)
		return 1000000;
	if (s < -1000000)
		return -1000000;
	return s;
}

/* entry: folds vals[0..3] (each call updates them) and returns the folded
 * sum clamped. */
SEC("tc")
int entry(struct __sk_buff *skb)
{
	__u64 acc = 0;
	int r = 0;

	for (__u32 k = 0; k < 4; k++) {
		acc += fold(k);
		r = clamp_add(r, (int)(acc & 0xffff));
	}
	return r;
}

char LICENSE[] SEC("license") = "GPL";
