/* The graph containers the verifier's graph programs use: an rbtree and a
 * list, each next to its lock in a global of its own. */
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

private(A) struct bpf_spin_lock glock;
private(A) struct bpf_rb_root groot __contains(node_data, node);

private(B) struct bpf_spin_lock llock;
private(B) struct bpf_list_head lhead __contains(elem, link);

static __attribute__((unused)) bool less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct node_data *na = container_of(a, struct node_data, node);
	struct node_data *nb = container_of(b, struct node_data, node);

	return na->key < nb->key;
}
