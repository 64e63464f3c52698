/* Known good: reserve a ring-buffer record, fill it, submit it. */
#include "../common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tc")
int good_ringbuf(struct __sk_buff *skb)
{
	__u64 *rec = bpf_ringbuf_reserve(&events, 16, 0);

	if (!rec)
		return 0;
	rec[0] = skb->len;
	rec[1] = bpf_ktime_get_ns();
	bpf_ringbuf_submit(rec, 0);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
