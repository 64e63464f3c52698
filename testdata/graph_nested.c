/* Beyond the kernel: nested containers. Each object of the outer tree
 * holds a bpf_spin_lock and a tree of its own, guarded by that lock. The
 * kernel refuses this (a bpf_obj_new type may not hold a lock and a root);
 * userbpf runs it, taking one lock at a time as the kernel's rules ask. */
#include "bpf_experimental.h"

struct inner {
	long key;
	struct bpf_rb_node node;
};

struct outer {
	long key;
	struct bpf_spin_lock lock;
	struct bpf_rb_root inner __contains(inner, node);
	struct bpf_rb_node node;
};

private(N) struct bpf_spin_lock nlock;
private(N) struct bpf_rb_root nroot __contains(outer, node);

static bool less_inner(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	return container_of(a, struct inner, node)->key < container_of(b, struct inner, node)->key;
}

static bool less_outer(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	return container_of(a, struct outer, node)->key < container_of(b, struct outer, node)->key;
}

#define NOUTER 4
#define NINNER 5

/* Builds NOUTER outer objects with NINNER inner nodes each and adds them
 * to the global tree. Returns 0, or where it failed. */
SEC("tc")
int nested_build(struct __sk_buff *ctx)
{
	for (int o = 0; o < NOUTER; o++) {
		struct outer *out = bpf_obj_new(typeof(*out));

		if (!out)
			return 1;
		out->key = NOUTER - o;
		for (int i = 0; i < NINNER; i++) {
			struct inner *in = bpf_obj_new(typeof(*in));

			if (!in) {
				bpf_obj_drop(out);
				return 2;
			}
			in->key = out->key * 100 + ((__u32)i * 3) % NINNER;
			bpf_spin_lock(&out->lock);
			bpf_rbtree_add(&out->inner, &in->node, less_inner);
			bpf_spin_unlock(&out->lock);
		}
		bpf_spin_lock(&nlock);
		bpf_rbtree_add(&nroot, &out->node, less_outer);
		bpf_spin_unlock(&nlock);
	}
	return 0;
}

/* Takes the smallest outer object out of the global tree, empties its
 * inner tree in order and returns an order-dependent hash (0 if empty). */
SEC("tc")
int nested_take(struct __sk_buff *ctx)
{
	struct bpf_rb_node *f;
	struct outer *out;
	__u32 h = 0;

	bpf_spin_lock(&nlock);
	f = bpf_rbtree_first(&nroot);
	if (f)
		f = bpf_rbtree_remove(&nroot, f);
	bpf_spin_unlock(&nlock);
	if (!f)
		return 0;
	out = container_of(f, struct outer, node);
	for (int i = 0; i < NINNER + 1; i++) {
		struct bpf_rb_node *n;

		bpf_spin_lock(&out->lock);
		n = bpf_rbtree_first(&out->inner);
		if (n)
			n = bpf_rbtree_remove(&out->inner, n);
		bpf_spin_unlock(&out->lock);
		if (!n)
			break;
		h = h * 31 + container_of(n, struct inner, node)->key;
		bpf_obj_drop(container_of(n, struct inner, node));
	}
	bpf_obj_drop(out);
	return h;
}

/* Scratch values nested_fault reads one of. */
long scratch[4];

/* A program that faults while it owns objects: it allocates an outer
 * object with inner nodes, then reads scratch[ctx->len]. The index comes
 * from the context, so the verifier cannot bound it (scratch holds no lock
 * or graph field, so it need not); the VM checks the read at run time. A
 * context with len < 4 runs to the end and drops the objects itself; a
 * larger len faults, the run is aborted and what it owned is dropped. */
SEC("tc")
int nested_fault(struct __sk_buff *ctx)
{
	struct outer *out = bpf_obj_new(typeof(*out));
	struct inner *in;
	__u32 i = ctx->len;
	long v;

	if (!out)
		return 1;
	in = bpf_obj_new(typeof(*in));
	if (!in) {
		bpf_obj_drop(out);
		return 2;
	}
	bpf_spin_lock(&out->lock);
	bpf_rbtree_add(&out->inner, &in->node, less_inner);
	bpf_spin_unlock(&out->lock);
	v = *(volatile long *)&scratch[i];
	bpf_obj_drop(out);
	return v;
}

/* A hash whose values hold a tree: deleting or replacing an element
 * drains it. */
struct hvalue {
	struct bpf_spin_lock lock;
	struct bpf_rb_root root __contains(inner, node);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct hvalue);
	__uint(max_entries, 8);
} htrees SEC(".maps");

__u32 next_key;

/* Adds three nodes to the tree of element next_key++ % 4 (creating it). */
SEC("tc")
int hash_add(struct __sk_buff *ctx)
{
	__u32 key = __sync_fetch_and_add(&next_key, 1) % 4;
	struct hvalue zero = {}, *v;

	v = bpf_map_lookup_elem(&htrees, &key);
	if (!v) {
		bpf_map_update_elem(&htrees, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&htrees, &key);
		if (!v)
			return 1;
	}
	for (int i = 0; i < 3; i++) {
		struct inner *in = bpf_obj_new(typeof(*in));

		if (!in)
			return 2;
		in->key = i;
		bpf_spin_lock(&v->lock);
		bpf_rbtree_add(&v->root, &in->node, less_inner);
		bpf_spin_unlock(&v->lock);
	}
	return 0;
}

char _license[] SEC("license") = "GPL";
