/* Known good: one element is pushed, then a loop pops from the front or the back of a list (two call
 * sites, one variable), breaks on NULL, and drops each element through
 * container_of. The two pops' references meet at the join after the
 * if/else, held in the same register: one reference there, not a leak. */
#define WITH_LIST
#include "graph.h"

SEC("tc")
int good_list_pop_join(struct __sk_buff *skb)
{
	struct elem *first;
	long sum = 0;

	first = bpf_obj_new(typeof(*first));
	if (!first)
		return -1;
	first->v = skb->len;
	bpf_spin_lock(&llock);
	bpf_list_push_back(&lhead, &first->link);
	bpf_spin_unlock(&llock);

	for (int i = 0; i < 16; i++) {
		struct bpf_list_node *n;
		struct elem *e;

		bpf_spin_lock(&llock);
		if (skb->len & (1u << i))
			n = bpf_list_pop_back(&lhead);
		else
			n = bpf_list_pop_front(&lhead);
		bpf_spin_unlock(&llock);
		if (!n)
			break;
		e = container_of(n, struct elem, link);
		sum += e->v;
		bpf_obj_drop(e);
	}
	return sum;
}

char LICENSE[] SEC("license") = "GPL";
