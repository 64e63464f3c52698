/* A USER_RINGBUF drained by a program: user space writes 8-byte samples,
 * the program's callback reads each through its dynptr (bpf_dynptr_read,
 * bpf_dynptr_data) and adds it to a sum. Returns how many samples it
 * drained. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sums SEC(".maps");

static long add_sample(struct bpf_dynptr *d, void *ctx)
{
	__u64 v = 0, *s;
	__u32 k = 0;
	__u32 *lo;

	if (bpf_dynptr_read(&v, sizeof(v), d, 0, 0))
		return 1; /* stop */
	s = bpf_map_lookup_elem(&sums, &k);
	if (s)
		*s += v;
	lo = bpf_dynptr_data(d, 0, sizeof(*lo));
	k = 1;
	s = bpf_map_lookup_elem(&sums, &k);
	if (s && lo)
		*s += *lo;
	return 0;
}

SEC("tc")
int drain(struct __sk_buff *skb)
{
	return bpf_user_ringbuf_drain(&samples, add_sample, NULL, 0);
}

char _license[] SEC("license") = "GPL";
