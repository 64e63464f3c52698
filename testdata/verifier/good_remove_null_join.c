/* Known good: a node is added, then the result of bpf_rbtree_remove is tested twice, once for a
 * value (`found = res != NULL`, which joins the NULL and non-NULL paths
 * while the removed node is still held) and once to drop it. */
#define WITH_RBTREE
#include "graph.h"

SEC("tc")
int good_remove_null_join(struct __sk_buff *skb)
{
	struct bpf_rb_node *res;
	struct node_data *n;
	long found;

	n = bpf_obj_new(typeof(*n));
	if (!n)
		return -1;
	n->key = skb->len;
	bpf_spin_lock(&glock);
	bpf_rbtree_add(&groot, &n->node, less);
	res = bpf_rbtree_first(&groot);
	if (!res) {
		bpf_spin_unlock(&glock);
		return 0;
	}
	res = bpf_rbtree_remove(&groot, res);
	bpf_spin_unlock(&glock);
	found = res != NULL;
	if (skb->len > 64)
		found += 2;
	if (res)
		bpf_obj_drop(container_of(res, struct node_data, node));
	return found;
}

char LICENSE[] SEC("license") = "GPL";
