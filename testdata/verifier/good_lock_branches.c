/* Known good: the same lock taken on two branches (on values from two
 * lookups), released after they meet. */
#include "common_maps.h"

SEC("tc")
int good_lock_branches(struct __sk_buff *skb)
{
	__u32 k1 = 1, k2 = 2;
	struct counter *c;

	if (skb->len > 100) {
		c = bpf_map_lookup_elem(&counters, &k1);
		if (!c)
			return 0;
		bpf_spin_lock(&c->lock);
		c->packets += 2;
	} else {
		c = bpf_map_lookup_elem(&counters, &k2);
		if (!c)
			return 0;
		bpf_spin_lock(&c->lock);
		c->packets++;
	}
	c->bytes += skb->len;
	bpf_spin_unlock(&c->lock);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
