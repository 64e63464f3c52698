/* Known bad: the key passed to bpf_map_lookup_elem was never written.
 * KERNEL: accepts it from a privileged loader (CAP_PERFMON may read
 * uninitialised stack); unprivileged loaders and userbpf reject it. */
#include "common_maps.h"

SEC("tc")
int bad_uninit_stack(struct __sk_buff *skb)
{
	__u32 key;
	struct counter *c = bpf_map_lookup_elem(&counters, &key); /* BAD: ErrUninitStack */

	return c ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
