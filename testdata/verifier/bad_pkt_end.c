/* Known bad: a load through skb->data_end, the end of the packet. */
#include "common_maps.h"

SEC("tc")
int bad_pkt_end(struct __sk_buff *skb)
{
	__u8 *end = (__u8 *)(long)skb->data_end;
	__u8 *data = (__u8 *)(long)skb->data;

	if (data + 1 > end)
		return 0;
	return *(volatile __u8 *)end; /* BAD: ErrMemAccess */
}

char LICENSE[] SEC("license") = "GPL";
