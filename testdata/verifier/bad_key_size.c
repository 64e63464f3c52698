/* Known bad: map wide has 8-byte keys; the key passed is a 4-byte one. */
#include "common_maps.h"

SEC("tc")
int bad_key_size(struct __sk_buff *skb)
{
	__u32 key = skb->len;
	__u64 *v = bpf_map_lookup_elem(&wide, &key); /* BAD: ErrArg */

	return v ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
