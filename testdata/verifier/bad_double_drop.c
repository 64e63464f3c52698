/* Known bad: an object dropped twice. */
#include "graph.h"

SEC("tc")
int bad_double_drop(struct __sk_buff *skb)
{
	struct node_data *n = bpf_obj_new(typeof(*n));

	if (!n)
		return 1;
	bpf_obj_drop(n);
	bpf_obj_drop(n); /* BAD: ErrRefInvalid */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
