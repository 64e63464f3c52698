/* Atomics on a BPF_F_MMAPABLE array, the way user space and programs share
 * counters through mmap: every BPF_ATOMIC form clang emits for -mcpu=v3. */
#include "common.h"

struct stats {
	__u64 add;     /* 0: fetch_add 64 */
	__u64 sub;     /* 8: fetch_sub 64 (neg + fetch_add) */
	__u64 or;      /* 16: fetch_or 64 */
	__u64 and;     /* 24: fetch_and 64 */
	__u64 xor;     /* 32: fetch_xor 64 */
	__u64 xchg;    /* 40: xchg 64 */
	__u64 cmpxchg; /* 48: cmpxchg 64 */
	__u32 add32;   /* 56: fetch_add 32 */
	__u32 or32;    /* 60: fetch_or 32 */
	__u32 xchg32;  /* 64: xchg 32 */
	__u32 cmpxchg32; /* 68: cmpxchg 32 */
	__u64 plain;   /* 72: add without fetch */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

/* bump: every atomic once on element 0. Returns a mix of the old values,
 * so each fetch result matters. */
SEC("tc")
int bump(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct stats *s = bpf_map_lookup_elem(&stats, &key);
	__u64 r = 0, old;

	if (!s)
		return 0;
	old = __sync_fetch_and_add(&s->add, 3);
	r += old;
	old = __sync_fetch_and_sub(&s->sub, 1);
	r ^= old;
	old = __sync_fetch_and_or(&s->or, 1ULL << (old & 63));
	r += old & 0xff;
	old = __sync_fetch_and_and(&s->and, ~(1ULL << ((r >> 3) & 63)));
	r += old >> 56;
	old = __sync_fetch_and_xor(&s->xor, 0x5a5a5a5a5a5a5a5aULL);
	r ^= old >> 32;
	old = __sync_lock_test_and_set(&s->xchg, r);
	r += old;
	old = __sync_val_compare_and_swap(&s->cmpxchg, r & 1 ? 0 : old, old + 7);
	r += old;
	r += __sync_fetch_and_add(&s->add32, 0x7fffffff); /* wraps */
	r += __sync_fetch_and_or(&s->or32, 0x80000001);
	r += __sync_lock_test_and_set(&s->xchg32, (__u32)r);
	r += __sync_val_compare_and_swap(&s->cmpxchg32, 0, 0xffffffff);
	__sync_fetch_and_add(&s->plain, 2); /* result unused: BPF_ADD, no fetch */
	return (__u32)(r ^ (r >> 32));
}

char LICENSE[] SEC("license") = "GPL";
