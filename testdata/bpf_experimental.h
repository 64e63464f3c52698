/* The graph-container API as the kernel declares it (its selftests'
 * bpf_experimental.h conventions), so one C source builds for the kernel
 * and for userbpf. The Debian 6.1 uapi headers lack these types, so they
 * are declared here with the kernel's sizes and alignment. */
#ifndef USERBPF_TESTDATA_BPF_EXPERIMENTAL_H
#define USERBPF_TESTDATA_BPF_EXPERIMENTAL_H

#include "common.h"
#include <stdbool.h>
#include <bpf/bpf_core_read.h>

struct bpf_list_head {
	__u64 __opaque[2];
} __attribute__((aligned(8)));

struct bpf_list_node {
	__u64 __opaque[3];
} __attribute__((aligned(8)));

struct bpf_rb_root {
	__u64 __opaque[2];
} __attribute__((aligned(8)));

struct bpf_rb_node {
	__u64 __opaque[4];
} __attribute__((aligned(8)));

struct bpf_refcount {
	__u32 __opaque[1];
} __attribute__((aligned(4)));

/* __contains(type, field) on a root names the struct its nodes are and the
 * node member inside it. */
#define __contains(name, node) __attribute__((btf_decl_tag("contains:" #name ":" #node)))

#ifndef container_of
#define container_of(ptr, type, member)                                    \
	({                                                                 \
		void *__mptr = (void *)(ptr);                              \
		((type *)(__mptr - __builtin_offsetof(type, member)));     \
	})
#endif

extern void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
#define bpf_obj_new(type) ((type *)bpf_obj_new_impl(bpf_core_type_id_local(type), NULL))

extern void bpf_obj_drop_impl(void *kptr, void *meta) __ksym;
#define bpf_obj_drop(kptr) bpf_obj_drop_impl(kptr, NULL)

extern void *bpf_refcount_acquire_impl(void *kptr, void *meta) __ksym;
#define bpf_refcount_acquire(kptr) bpf_refcount_acquire_impl(kptr, NULL)

extern int bpf_list_push_front_impl(struct bpf_list_head *head, struct bpf_list_node *node,
				    void *meta, __u64 off) __ksym;
#define bpf_list_push_front(head, node) bpf_list_push_front_impl(head, node, NULL, 0)

extern int bpf_list_push_back_impl(struct bpf_list_head *head, struct bpf_list_node *node,
				   void *meta, __u64 off) __ksym;
#define bpf_list_push_back(head, node) bpf_list_push_back_impl(head, node, NULL, 0)

extern struct bpf_list_node *bpf_list_pop_front(struct bpf_list_head *head) __ksym;
extern struct bpf_list_node *bpf_list_pop_back(struct bpf_list_head *head) __ksym;

extern struct bpf_rb_node *bpf_rbtree_remove(struct bpf_rb_root *root, struct bpf_rb_node *node) __ksym;
extern int bpf_rbtree_add_impl(struct bpf_rb_root *root, struct bpf_rb_node *node,
			       bool (less)(struct bpf_rb_node *a, const struct bpf_rb_node *b),
			       void *meta, __u64 off) __ksym;
#define bpf_rbtree_add(head, node, less) bpf_rbtree_add_impl(head, node, less, NULL, 0)
extern struct bpf_rb_node *bpf_rbtree_first(struct bpf_rb_root *root) __ksym;

/* The kernel's convention for the graph containers' home: a global (in a
 * .data section of its own, one map value) next to its lock. */
#ifndef private
#define private(name) SEC(".data." #name) __hidden __attribute__((aligned(8)))
#endif

#endif
