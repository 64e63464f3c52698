/* Known good: tc reads the packet through skb->data after checking the
 * access against skb->data_end, sums a header's bytes in a bounded loop,
 * and stores the sum through the same pointer; XDP does the same through
 * struct xdp_md. */
#include "common_maps.h"

SEC("tc")
int good_packet(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *p = data;
	__u32 sum = 0;

	if (data + 14 > end)
		return 0;
	for (int i = 0; i < 12; i++)
		sum += p[i];
	p[13] = sum;
	return sum + (end - data);
}

SEC("xdp")
int good_packet_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u16 *proto = data + 12;

	if ((void *)(proto + 1) > end)
		return XDP_PASS;
	return *proto == 0x0008 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
