/* Programs for the abort test that fault in ways a verifier sees
 * statically, so the kernel refuses them and the test stores them without
 * verification (programs.Store): each bumps aborts under the lock, then
 * faults. */
#include "abort.h"

/* double_lock: takes the lock it already holds (helper misuse). */
SEC("tc")
int double_lock(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	bpf_spin_lock(&c->lock);
	bpf_spin_unlock(&c->lock);
	return 0;
}

/* oob_store: stores 4 KiB past its map value while holding the lock. */
SEC("tc")
int oob_store(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	((volatile __u64 *)c)[512] = 1;
	bpf_spin_unlock(&c->lock);
	return 0;
}

/* ring_oob: reserves a 16-byte record and reads past its end. */
SEC("tc")
int ring_oob(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();
	volatile __u64 *rec;
	__u64 v;

	if (!c)
		return 0;
	rec = bpf_ringbuf_reserve(&events, 16, 0);
	if (!rec)
		return 1;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	bpf_spin_unlock(&c->lock);
	v = rec[64];
	rec[0] = v;
	bpf_ringbuf_submit((void *)rec, 0);
	return 0;
}

/* down recurses n frames deep; each frame keeps a stack buffer live so
 * clang cannot turn the recursion into a loop. */
static __noinline int down(int n)
{
	volatile char buf[16];

	buf[0] = n;
	if (n <= 0)
		return buf[0];
	return down(n - 1) + buf[0];
}

/* deep: recursion past the call-depth limit while holding the lock. */
SEC("tc")
int deep(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();
	int v;

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	v = down(skb->mark + 16);
	bpf_spin_unlock(&c->lock);
	return v;
}

/* helper_panic: calls bpf_get_numa_node_id, which userbpf does not
 * implement (a run stops with "unknown helper"), while holding the lock.
 * The abort test installs a helper there that panics, as a buggy host
 * helper would. */
SEC("tc")
int helper_panic(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	bpf_get_numa_node_id();
	bpf_spin_unlock(&c->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
