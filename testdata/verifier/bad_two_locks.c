/* Known bad: a second bpf_spin_lock while one is held. */
#include "common_maps.h"

SEC("tc")
int bad_two_locks(struct __sk_buff *skb)
{
	__u32 k1 = 1, k2 = 2;
	struct counter *a = bpf_map_lookup_elem(&counters, &k1);
	struct counter *b = bpf_map_lookup_elem(&counters, &k2);

	if (!a || !b)
		return 0;
	bpf_spin_lock(&a->lock);
	bpf_spin_lock(&b->lock); /* BAD: ErrLock */
	a->packets++;
	b->packets++;
	bpf_spin_unlock(&b->lock);
	bpf_spin_unlock(&a->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
