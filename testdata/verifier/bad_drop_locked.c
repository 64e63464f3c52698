/* Known bad: bpf_obj_drop inside the critical section (only the graph
 * kfuncs may be called while the lock is held). */
#define WITH_LIST
#include "graph.h"

SEC("tc")
int bad_drop_locked(struct __sk_buff *skb)
{
	struct bpf_list_node *l;
	struct elem *e;
	long v = 0;

	e = bpf_obj_new(typeof(*e));
	if (!e)
		return 0;
	bpf_spin_lock(&llock);
	bpf_list_push_back(&lhead, &e->link);
	l = bpf_list_pop_front(&lhead);
	if (l) {
		e = container_of(l, struct elem, link);
		v = e->v;
		bpf_obj_drop(e); /* BAD: ErrLockHeld */
	}
	bpf_spin_unlock(&llock);
	return v;
}

char LICENSE[] SEC("license") = "GPL";
