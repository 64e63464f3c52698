/* Loops: a bounded loop the verifier walks, bpf_loop with a callback,
 * bpf_for_each_map_elem, and an open-coded numeric iterator (the
 * bpf_iter_num_* kfuncs behind libbpf's bpf_for). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} data SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} seen SEC(".maps");

__u32 rounds; /* .bss */

__u64 slots[16]; /* .bss */

/* bounded: a loop clang must not unroll; each slot += its index * rounds,
 * summing the new values. Returns the sum's low 32 bits. */
SEC("tc")
int bounded(struct __sk_buff *skb)
{
	__u64 sum = 0;

	rounds++;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 16; i++) {
		slots[i] += i * rounds;
		sum += slots[i];
	}
	return (__u32)sum;
}

struct loop_ctx {
	__u64 acc;
	__u32 stop_at;
};

static long step(__u64 index, void *ctx)
{
	struct loop_ctx *c = ctx;
	__u32 k = (__u32)index;
	__u32 one = 1;

	if (index == c->stop_at)
		return 1; /* stop early */
	c->acc = c->acc * 3 + index;
	bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
	return 0;
}

/* with_bpf_loop: up to 12 iterations of step, stopping early at rounds % 12.
 * Returns the iterations done * 100000 + acc % 100000. */
SEC("tc")
int with_bpf_loop(struct __sk_buff *skb)
{
	struct loop_ctx c = { .acc = 1, .stop_at = 0 };
	long n;

	rounds++;
	c.stop_at = rounds % 12;
	n = bpf_loop(12, step, &c, 0);
	if (n < 0)
		return -1;
	return n * 100000 + c.acc % 100000;
}

struct sum_ctx {
	__u64 sum;
	__u32 count;
};

static long add_elem(void *map, __u32 *key, __u64 *val, struct sum_ctx *c)
{
	c->sum += *val ^ *key;
	c->count++;
	*val += 1;
	return *key == 9; /* stop after key 9 */
}

/* each_elem: bpf_for_each_map_elem over data. Returns the elements visited
 * * 100000 + the sum's low bits. */
SEC("tc")
int each_elem(struct __sk_buff *skb)
{
	struct sum_ctx c = {};
	long n = bpf_for_each_map_elem(&data, add_elem, &c, 0);

	return n * 100000 + (c.sum % 100000) + c.count * 0;
}

/* The open-coded numeric iterator (kernel 6.4+), declared as libbpf's
 * bpf_experimental.h users do. The uapi of 6.1 lacks the type. */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

/* iter_sum: for i in [2, 10): data[i] += 1, summing the old values.
 * Returns the sum's low 32 bits. */
SEC("tc")
int iter_sum(struct __sk_buff *skb)
{
	struct bpf_iter_num it;
	__u64 sum = 0;
	int *i;

	bpf_iter_num_new(&it, 2, 10);
	while ((i = bpf_iter_num_next(&it))) {
		__u32 k = *i;
		__u64 *v = bpf_map_lookup_elem(&data, &k);

		if (v) {
			sum += *v;
			*v += 1;
		}
	}
	bpf_iter_num_destroy(&it);
	return (__u32)sum;
}

char LICENSE[] SEC("license") = "GPL";
