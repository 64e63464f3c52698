/* Lock-guarded rbtrees and lists as the kernel declares them: roots next to
 * their bpf_spin_lock in global data (.data.A …) and in an array's values.
 * Every program is kernel-valid; tests run the same sequence on 6.18 and on
 * userbpf and compare what the programs return. */
#include "bpf_experimental.h"

struct node_data {
	long key;
	long data;
	struct bpf_rb_node node;
};

struct elem {
	long val;
	struct bpf_list_node node;
};

/* A refcounted object may sit in a tree and a list at once. */
struct shared {
	long key;
	struct bpf_rb_node rb;
	struct bpf_list_node l;
	struct bpf_refcount ref;
};

private(A) struct bpf_spin_lock glock;
private(A) struct bpf_rb_root groot __contains(node_data, node);

private(B) struct bpf_spin_lock llock;
private(B) struct bpf_list_head lhead __contains(elem, node);

private(C) struct bpf_spin_lock slock;
private(C) struct bpf_rb_root sroot __contains(shared, rb);
private(C) struct bpf_list_head slist __contains(shared, l);

struct map_value {
	long count;
	struct bpf_spin_lock lock;
	struct bpf_rb_root root __contains(node_data, node);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, int);
	__type(value, struct map_value);
	__uint(max_entries, 2);
} trees SEC(".maps");

static bool less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct node_data *na = container_of(a, struct node_data, node);
	struct node_data *nb = container_of(b, struct node_data, node);

	return na->key < nb->key;
}

static bool less_shared(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct shared *na = container_of(a, struct shared, rb);
	struct shared *nb = container_of(b, struct shared, rb);

	return na->key < nb->key;
}

#define NKEYS 24

/* Adds NKEYS nodes with keys in a scrambled order (duplicates included:
 * ties go right, so data tells equal keys apart). */
SEC("tc")
int rbtree_add(struct __sk_buff *ctx)
{
	for (int i = 0; i < NKEYS; i++) {
		struct node_data *n = bpf_obj_new(typeof(*n));

		if (!n)
			return 1;
		n->key = ((__u32)i * 7) % 17;
		n->data = i;
		bpf_spin_lock(&glock);
		bpf_rbtree_add(&groot, &n->node, less);
		bpf_spin_unlock(&glock);
	}
	return 0;
}

/* Returns the smallest key (without removing it), or -1. */
SEC("tc")
int rbtree_first_key(struct __sk_buff *ctx)
{
	struct bpf_rb_node *f;
	long key = -1;

	bpf_spin_lock(&glock);
	f = bpf_rbtree_first(&groot);
	if (f)
		key = container_of(f, struct node_data, node)->key;
	bpf_spin_unlock(&glock);
	return key;
}

/* Removes the first node up to NKEYS times and returns an order-dependent
 * hash of (key, data) so any difference in order shows. */
SEC("tc")
int rbtree_drain(struct __sk_buff *ctx)
{
	__u32 h = 0;

	for (int i = 0; i < NKEYS + 2; i++) {
		struct bpf_rb_node *f;
		struct node_data *n;

		bpf_spin_lock(&glock);
		f = bpf_rbtree_first(&groot);
		if (!f) {
			bpf_spin_unlock(&glock);
			break;
		}
		f = bpf_rbtree_remove(&groot, f);
		bpf_spin_unlock(&glock);
		if (!f)
			return -1;
		n = container_of(f, struct node_data, node);
		h = h * 31 + n->key * 100 + n->data;
		bpf_obj_drop(n);
	}
	return h;
}

/* Pushes 0..9 alternately front and back. */
SEC("tc")
int list_push(struct __sk_buff *ctx)
{
	for (int i = 0; i < 10; i++) {
		struct elem *e = bpf_obj_new(typeof(*e));

		if (!e)
			return 1;
		e->val = i;
		bpf_spin_lock(&llock);
		if (i & 1)
			bpf_list_push_back(&lhead, &e->node);
		else
			bpf_list_push_front(&lhead, &e->node);
		bpf_spin_unlock(&llock);
	}
	return 0;
}

/* Pops alternately front and back, hashing the order. */
SEC("tc")
int list_pop(struct __sk_buff *ctx)
{
	__u32 h = 0;

	for (int i = 0; i < 12; i++) {
		struct bpf_list_node *n;
		struct elem *e;

		bpf_spin_lock(&llock);
		if (i % 3)
			n = bpf_list_pop_back(&lhead);
		else
			n = bpf_list_pop_front(&lhead);
		bpf_spin_unlock(&llock);
		if (!n)
			break;
		e = container_of(n, struct elem, node);
		h = h * 31 + e->val + 1;
		bpf_obj_drop(e);
	}
	return h;
}

/* One refcounted object in a tree and a list: pop it from the list, remove
 * it from the tree through the popped reference, drop both references.
 * Adding it to the tree a second time fails with -EINVAL (the second
 * reference is then dropped). Returns a code built from every result. */
SEC("tc")
int refcount(struct __sk_buff *ctx)
{
	struct shared *s, *s2, *s3;
	struct bpf_list_node *ln;
	struct bpf_rb_node *rn;
	long ret = 0;
	int err;

	s = bpf_obj_new(typeof(*s));
	if (!s)
		return 1;
	s->key = 42;
	s2 = bpf_refcount_acquire(s);
	s3 = bpf_refcount_acquire(s);
	bpf_spin_lock(&slock);
	err = bpf_rbtree_add(&sroot, &s->rb, less_shared);
	ret = ret * 10 + (err == 0);
	err = bpf_list_push_back(&slist, &s2->l);
	ret = ret * 10 + (err == 0);
	err = bpf_rbtree_add(&sroot, &s3->rb, less_shared);
	ret = ret * 10 + (err == -22 ? 2 : 0);
	ln = bpf_list_pop_front(&slist);
	if (!ln) {
		bpf_spin_unlock(&slock);
		return 2;
	}
	s = container_of(ln, struct shared, l);
	rn = bpf_rbtree_remove(&sroot, &s->rb);
	bpf_spin_unlock(&slock);
	ret = ret * 10 + (rn != NULL);
	ret = ret * 1000 + s->key;
	bpf_obj_drop(s);
	if (rn)
		bpf_obj_drop(container_of(rn, struct shared, rb));
	return ret;
}

/* A node that is not in the tree: removing it gives NULL. */
SEC("tc")
int remove_absent(struct __sk_buff *ctx)
{
	struct shared *s, *s2;
	struct bpf_rb_node *rn;
	struct bpf_list_node *ln;
	long ret = 0;

	s = bpf_obj_new(typeof(*s));
	if (!s)
		return 1;
	s->key = 7;
	s2 = bpf_refcount_acquire(s);
	bpf_spin_lock(&slock);
	bpf_list_push_front(&slist, &s->l);
	rn = bpf_rbtree_remove(&sroot, &s2->rb);
	ret = rn != NULL;
	ln = bpf_list_pop_front(&slist);
	bpf_spin_unlock(&slock);
	if (rn)
		bpf_obj_drop(container_of(rn, struct shared, rb));
	if (ln) {
		ret = ret * 10 + 5;
		bpf_obj_drop(container_of(ln, struct shared, l));
	}
	bpf_obj_drop(s2);
	return ret;
}

/* Adds one node with key ctx-independent data to the array value 0's tree
 * and returns how many the value says it holds. */
SEC("tc")
int array_add(struct __sk_buff *ctx)
{
	struct map_value *v;
	struct node_data *n;
	int key = 0;
	long c;

	v = bpf_map_lookup_elem(&trees, &key);
	if (!v)
		return -1;
	n = bpf_obj_new(typeof(*n));
	if (!n)
		return -2;
	bpf_spin_lock(&v->lock);
	c = ++v->count;
	n->key = ((__u64)c * 5) % 11;
	n->data = c;
	bpf_rbtree_add(&v->root, &n->node, less);
	bpf_spin_unlock(&v->lock);
	return c;
}

/* Creates and drops an object without using it. */
SEC("tc")
int new_drop(struct __sk_buff *ctx)
{
	struct node_data *n = bpf_obj_new(typeof(*n));

	if (!n)
		return 1;
	n->key = 3;
	bpf_obj_drop(n);
	return 0;
}

char _license[] SEC("license") = "GPL";
