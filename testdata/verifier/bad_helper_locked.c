/* Known bad: a helper call inside the critical section. */
#include "common_maps.h"

SEC("tc")
int bad_helper_locked(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	c->last = bpf_ktime_get_ns(); /* BAD: ErrLockHeld */
	bpf_spin_unlock(&c->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
