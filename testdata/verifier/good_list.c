/* Known good: push an element on a list under its lock, pop one and drop
 * it. */
#define WITH_LIST
#include "graph.h"

SEC("tc")
int good_list(struct __sk_buff *skb)
{
	struct bpf_list_node *l;
	struct elem *e;
	long v;

	e = bpf_obj_new(typeof(*e));
	if (!e)
		return 1;
	e->v = skb->len;
	bpf_spin_lock(&llock);
	bpf_list_push_back(&lhead, &e->link);
	l = bpf_list_pop_front(&lhead);
	bpf_spin_unlock(&llock);
	if (!l)
		return 2;
	e = container_of(l, struct elem, link);
	v = e->v;
	bpf_obj_drop(e);
	return v;
}

char LICENSE[] SEC("license") = "GPL";
