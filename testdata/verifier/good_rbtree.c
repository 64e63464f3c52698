/* Known good: add a node to an rbtree under its lock, then remove the
 * first node and drop it. */
#define WITH_RBTREE
#include "graph.h"

SEC("tc")
int good_rbtree(struct __sk_buff *skb)
{
	struct node_data *n, *m;
	struct bpf_rb_node *res;
	long key;

	n = bpf_obj_new(typeof(*n));
	if (!n)
		return 1;
	n->key = skb->len;
	n->data = 42;

	bpf_spin_lock(&glock);
	bpf_rbtree_add(&groot, &n->node, less);
	bpf_spin_unlock(&glock);

	bpf_spin_lock(&glock);
	res = bpf_rbtree_first(&groot);
	if (!res) {
		bpf_spin_unlock(&glock);
		return 2;
	}
	res = bpf_rbtree_remove(&groot, res);
	bpf_spin_unlock(&glock);
	if (!res)
		return 3;
	m = container_of(res, struct node_data, node);
	key = m->key;
	bpf_obj_drop(m);
	return key;
}

char LICENSE[] SEC("license") = "GPL";
