/* Known bad: a reserved ring-buffer record is not submitted on one path. */
#include "../common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tc")
int bad_ringbuf_leak(struct __sk_buff *skb)
{
	__u64 *rec = bpf_ringbuf_reserve(&events, 8, 0);

	if (!rec)
		return 0;
	if (skb->len > 100) /* BAD: ErrRefLeak */
		return 1;
	*rec = skb->len;
	bpf_ringbuf_submit(rec, 0);
	return 2;
}

char LICENSE[] SEC("license") = "GPL";
