/* Known bad: bpf_rbtree_add without the lock that guards the tree. */
#define WITH_RBTREE
#include "graph.h"

SEC("tc")
int bad_graph_nolock(struct __sk_buff *skb)
{
	struct node_data *n = bpf_obj_new(typeof(*n));

	if (!n)
		return 1;
	n->key = skb->len;
	bpf_rbtree_add(&groot, &n->node, less); /* BAD: ErrGraphLock */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
