/* Known bad: the lookup result is used without a NULL check. */
#include "common_maps.h"

SEC("tc")
int bad_null(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);

	c->packets++; /* BAD: ErrNullCheck */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
