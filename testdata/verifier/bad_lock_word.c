/* Known bad: a direct load of the lock word. */
#include "common_maps.h"

SEC("tc")
int bad_lock_word(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);

	if (!c)
		return 0;
	return *(volatile __u32 *)&c->lock; /* BAD: ErrSpecialField */
}

char LICENSE[] SEC("license") = "GPL";
