/* Known bad: a node used after bpf_spin_unlock ended the non-owning
 * reference bpf_rbtree_add left. */
#define WITH_RBTREE
#include "graph.h"

SEC("tc")
int bad_nonowning(struct __sk_buff *skb)
{
	struct node_data *n = bpf_obj_new(typeof(*n));

	if (!n)
		return 1;
	bpf_spin_lock(&glock);
	bpf_rbtree_add(&groot, &n->node, less);
	bpf_spin_unlock(&glock);
	n->data = skb->len; /* BAD: ErrRefInvalid */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
