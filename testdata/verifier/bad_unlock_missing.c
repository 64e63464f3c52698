/* Known bad: one path returns with the lock held. */
#include "common_maps.h"

SEC("tc")
int bad_unlock_missing(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	if (c->packets > 100) /* BAD: ErrLockHeld */
		return 1;
	c->packets++;
	bpf_spin_unlock(&c->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
