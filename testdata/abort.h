/* The maps the abort test's programs share (abort_ok.c and abort_bad.c
 * declare them identically, so loading both objects into one region gives
 * one set of maps). */
#ifndef USERBPF_TESTDATA_ABORT_H
#define USERBPF_TESTDATA_ABORT_H

#include "common.h"
#include <stdbool.h>

/* A counter other processes increment under its lock, through the inc
 * program and through Map.WithLock. Faulting programs bump aborts (under
 * the same lock) just before they fault, so the test can count them. */
struct locked_counter {
	struct bpf_spin_lock lock; /* offset 0 */
	__u32 pad;
	__u64 value;  /* offset 8: incremented by runs that complete */
	__u64 aborts; /* offset 16: incremented by runs that then fault */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked_counter);
} locked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 10);
} events SEC(".maps");

/* can_loop is true until the run's may_goto allowance is used up (the
 * kernel's bpf_experimental.h macro): a loop on it is accepted by the
 * kernel's verifier however long it runs, so the run-time instruction
 * budget is what stops it here. */
#ifndef can_loop
#define can_loop                                              \
	({                                                    \
		__label__ l_break, l_continue;                \
		bool ret = true;                              \
		asm volatile goto("may_goto %l[l_break]" :::: l_break); \
		goto l_continue;                              \
	l_break:                                              \
		ret = false;                                  \
	l_continue:;                                          \
		ret;                                          \
	})
#endif

/* A compiler barrier: the aborts++ before a fault must reach memory before
 * the faulting instruction (clang would otherwise sink it past a volatile
 * access). */
#define barrier() asm volatile("" ::: "memory")

static __always_inline struct locked_counter *counter(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&locked, &key);
}

#endif
