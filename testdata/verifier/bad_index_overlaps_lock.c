/* Known bad: a masked index whose range covers the lock word. */
#include "slots.h"

SEC("tc")
int bad_index_overlaps_lock(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct slots *s = bpf_map_lookup_elem(&slot_map, &key);

	if (!s)
		return 0;
	s->before[skb->len & 7] += 1; /* BAD: ErrSpecialField */
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
