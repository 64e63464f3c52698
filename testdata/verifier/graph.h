/* The graph containers the verifier's graph programs use: an rbtree and a
 * list, each next to its lock in a global of its own. A program defines
 * WITH_RBTREE and/or WITH_LIST before including this for the containers it
 * uses: a root whose node struct the program never names has no such
 * struct in the object's BTF, so the map's BTF is invalid (the kernel
 * refuses it; libbpf hides that by retrying without BTF, userbpf's loader
 * refuses it). */
#include "../bpf_experimental.h"

struct node_data {
	long key;
	long data;
	struct bpf_rb_node node;
};

struct elem {
	long v;
	struct bpf_list_node link;
};

#ifdef WITH_RBTREE
private(A) struct bpf_spin_lock glock;
private(A) struct bpf_rb_root groot __contains(node_data, node);

static __attribute__((unused)) bool less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct node_data *na = container_of(a, struct node_data, node);
	struct node_data *nb = container_of(b, struct node_data, node);

	return na->key < nb->key;
}
#endif

#ifdef WITH_LIST
private(B) struct bpf_spin_lock llock;
private(B) struct bpf_list_head lhead __contains(elem, link);
#endif
