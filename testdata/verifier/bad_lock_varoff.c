/* Known bad: the lock named at a variable offset. */
#include "common_maps.h"

SEC("tc")
int bad_lock_varoff(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);
	void *p;

	if (!c)
		return 0;
	p = (void *)&c->lock + (skb->len & 8);
	bpf_spin_lock(p); /* BAD: ErrLock */
	c->packets++;
	bpf_spin_unlock(&c->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
