/* Counters under bpf_spin_lock.
 *
 * Built twice: spinlock_lru.o keeps the counters in an LRU hash, as a user
 * who wants old flows evicted would (the kernel refuses a bpf_spin_lock in
 * an LRU hash value, userbpf allows it), and spinlock_hash.o uses a plain
 * HASH (-DCOUNTER_MAP_TYPE=BPF_MAP_TYPE_HASH) so the kernel loads it. */
#include "common.h"

#ifndef COUNTER_MAP_TYPE
#define COUNTER_MAP_TYPE BPF_MAP_TYPE_LRU_HASH
#endif

struct counter {
	__u64 packets;
	__u64 bytes;
	struct bpf_spin_lock lock; /* offset 16 */
	__u32 last;
};

struct {
	__uint(type, COUNTER_MAP_TYPE);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

/* The "lookup + spin lock + increment" benchmark program's map. */
struct total {
	struct bpf_spin_lock lock; /* offset 0 */
	__u32 pad;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct total);
} totals SEC(".maps");

__u32 calls; /* .bss */

/* count: key = calls % 4; creates the counter on first use, then bumps it
 * under its lock. Returns packets * 16 + key after the bump. */
SEC("tc")
int count(struct __sk_buff *skb)
{
	__u32 key = calls % 4;
	struct counter *c;
	__u64 n;

	calls++;
	c = bpf_map_lookup_elem(&counters, &key);
	if (!c) {
		struct counter init = {};

		bpf_map_update_elem(&counters, &key, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counters, &key);
		if (!c)
			return 0;
	}
	bpf_spin_lock(&c->lock);
	c->packets++;
	c->bytes += key * 100 + 1;
	c->last = calls;
	n = c->packets;
	bpf_spin_unlock(&c->lock);
	return n * 16 + key;
}

/* lock_inc: the benchmark program. Returns the new total. */
SEC("tc")
int lock_inc(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct total *t;
	__u64 v;

	t = bpf_map_lookup_elem(&totals, &key);
	if (!t)
		return 0;
	bpf_spin_lock(&t->lock);
	v = ++t->value;
	bpf_spin_unlock(&t->lock);
	return v;
}

char LICENSE[] SEC("license") = "GPL";
