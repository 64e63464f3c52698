/* A ring-buffer producer: bpf_ringbuf_output (copy) and
 * bpf_ringbuf_reserve/submit/discard (in place), then bpf_ringbuf_query. */
#include "common.h"

struct event {
	__u32 seq;
	__u32 kind;
	__u64 payload;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

__u32 seq; /* .bss */

/* produce: one record by bpf_ringbuf_output, one by reserve + submit, and
 * every third call a reserved record that is discarded. Returns the bytes
 * the consumer has still to read (BPF_RB_AVAIL_DATA), or 1000000 + seq when
 * the ring is full. */
SEC("tc")
int produce(struct __sk_buff *skb)
{
	struct event ev = { .seq = seq, .kind = 1, .payload = 0x1122334455667788ULL ^ seq };
	struct event *e;

	seq++;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0) < 0)
		return 1000000 + seq;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 2000000 + seq;
	e->seq = seq;
	e->kind = 2;
	e->payload = (__u64)seq << 32 | 0xbeef;
	if (seq % 3 == 0) {
		bpf_ringbuf_discard(e, 0);
	} else {
		bpf_ringbuf_submit(e, 0);
	}
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
}

char LICENSE[] SEC("license") = "GPL";
