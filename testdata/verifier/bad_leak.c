/* Known bad: an object from bpf_obj_new is neither dropped nor inserted
 * on one path. */
#include "graph.h"

SEC("tc")
int bad_leak(struct __sk_buff *skb)
{
	struct node_data *n = bpf_obj_new(typeof(*n));

	if (!n)
		return 1;
	n->key = skb->len;
	if (skb->len > 100) /* BAD: ErrRefLeak */
		return 2;
	bpf_obj_drop(n);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
