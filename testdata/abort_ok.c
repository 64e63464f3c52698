/* Programs for the abort test that the kernel's verifier accepts (each is
 * checked with bpftool prog load on the running kernel): a plain locked
 * increment, and programs that fault at run time only, where no static
 * check can see it: the instruction budget runs out inside a may_goto loop
 * while the lock is held (with or without a ring-buffer record reserved),
 * and a packet read at a variable index through pointers the caller's
 * context supplies. */
#include "abort.h"

/* inc: value++ under the lock; returns the new value. */
SEC("tc")
int inc(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();
	__u64 v;

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	v = ++c->value;
	bpf_spin_unlock(&c->lock);
	return v;
}

/* emit: one 16-byte ring-buffer record {value, 0xabcd}, submitted. */
SEC("tc")
int emit(struct __sk_buff *skb)
{
	__u64 *rec = bpf_ringbuf_reserve(&events, 16, 0);

	if (!rec)
		return 1;
	rec[0] = skb->mark;
	rec[1] = 0xabcd;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

/* spin_locked: aborts++ under the lock, then loop on can_loop while still
 * holding it. may_goto allows 8M iterations; the run's 1M-instruction
 * budget ends it first, with the lock held. */
SEC("tc")
int spin_locked(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();
	__u64 n = 0;

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	while (can_loop)
		n++;
	c->value += n & 0; /* keep n: the loop must not be optimized away */
	bpf_spin_unlock(&c->lock);
	return n;
}

/* spin_reserved: reserve a record, then loop on can_loop until the budget
 * ends the run with the record still reserved; aborts++ (under the lock)
 * first. */
SEC("tc")
int spin_reserved(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();
	__u64 *rec, n = 0;

	if (!c)
		return 0;
	rec = bpf_ringbuf_reserve(&events, 16, 0);
	if (!rec)
		return 1;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	bpf_spin_unlock(&c->lock);
	while (can_loop)
		n++;
	rec[0] = n;
	rec[1] = 0xdead;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

/* packet_byte: aborts++ and read the packet byte at index mark & 0xff under
 * the lock, bounds-checked against data_end as the verifier demands. The
 * kernel fills data and data_end; here they are whatever the caller's
 * context holds, so a context whose data points nowhere faults at the
 * read, with the lock held. */
SEC("tc")
int packet_byte(struct __sk_buff *skb)
{
	struct locked_counter *c = counter();
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 i = skb->mark & 0xff;
	__u8 *p = data + i;
	int v = 0;

	if (!c)
		return 0;
	if ((void *)(p + 1) > end)
		return 0;
	bpf_spin_lock(&c->lock);
	c->aborts++;
	barrier();
	v = *p;
	bpf_spin_unlock(&c->lock);
	return v;
}

char LICENSE[] SEC("license") = "GPL";
