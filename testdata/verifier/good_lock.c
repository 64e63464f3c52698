/* Known good: lookup, NULL check, lock, update, unlock, then helpers. */
#include "common_maps.h"

SEC("tc")
int good_lock(struct __sk_buff *skb)
{
	__u32 key = skb->len & 7;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);
	__u64 n;

	if (!c) {
		struct counter init = {};

		bpf_map_update_elem(&counters, &key, &init, BPF_NOEXIST);
		return 0;
	}
	bpf_spin_lock(&c->lock);
	c->packets++;
	c->bytes += skb->len;
	n = c->packets;
	bpf_spin_unlock(&c->lock);
	c->last = bpf_ktime_get_ns();
	return n;
}

char LICENSE[] SEC("license") = "GPL";
