/* Known bad: a global (non-static) function called in the critical
 * section; only static functions may be. */
#include "common_maps.h"

__noinline int scale(int x)
{
	return x * 3;
}

SEC("tc")
int bad_global_locked(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	c->last = scale(skb->len); /* BAD: ErrLockHeld */
	bpf_spin_unlock(&c->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
