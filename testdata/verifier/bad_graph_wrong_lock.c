/* Known bad: the tree is touched under the list's lock, not its own. (The
 * elem allocation only makes its type part of the object's BTF, which the
 * list's contains: tag names.) */
#define WITH_RBTREE
#define WITH_LIST
#include "graph.h"

SEC("tc")
int bad_graph_wrong_lock(struct __sk_buff *skb)
{
	struct elem *e = bpf_obj_new(typeof(*e));
	struct node_data *n;

	if (e)
		bpf_obj_drop(e);
	n = bpf_obj_new(typeof(*n));
	if (!n)
		return 1;
	bpf_spin_lock(&llock);
	bpf_rbtree_add(&groot, &n->node, less); /* BAD: ErrGraphLock */
	bpf_spin_unlock(&llock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
