//go:build ignore
// (The go:build line keeps the go tool from treating this as a cgo file.)

/* The object `userbpf demo` loads: one program, demo_run, that touches
 * every kind of shared state userbpf provides while user space uses the
 * same maps from other processes.
 *
 *   locked   LRU_HASH whose value holds a bpf_spin_lock (the kernel refuses
 *            a spin lock in an LRU hash value; userbpf allows it). The
 *            program bumps .count under the lock; user space takes the same
 *            lock with Map.WithLock.
 *   stats    BPF_F_MMAPABLE ARRAY of atomic counters: .counter is bumped by
 *            the program and by user space (Map.Atomic); .runs numbers the
 *            runs; .produced/.dropped count ring-buffer outputs.
 *   events   RINGBUF: every EVENT_EVERY-th run writes one event.
 *   buffers  ARRAY_OF_MAPS double buffer: slot 0 holds buf_a or buf_b; the
 *            program adds 1 to whichever inner array slot 0 holds, user
 *            space flips the slot, waits a grace period and drains the old
 *            buffer.
 *
 * Rebuild with `make` (clang-19, llvm-strip-19, libbpf-dev) and commit
 * demo.o: the CLI embeds it. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef BPF_F_MMAPABLE
#define BPF_F_MMAPABLE (1U << 10)
#endif

#define EVENT_EVERY 64

struct locked_value {
	struct bpf_spin_lock lock; /* offset 0 */
	__u32 pad;
	__u64 count;               /* offset 8 */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct locked_value);
} locked SEC(".maps");

struct stats {
	__u64 counter;  /* 0: program runs + user-space atomic adds */
	__u64 runs;     /* 8: runs, numbered by fetch-add */
	__u64 produced; /* 16: events written to the ring */
	__u64 dropped;  /* 24: events the full ring refused */
	__u64 misses;   /* 32: runs that found no locked value */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

struct event {
	__u64 run;   /* the run's number */
	__u64 count; /* the locked counter after the run's increment */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} events SEC(".maps");

struct buffer {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} buf_a SEC(".maps"), buf_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct buffer);
} buffers SEC(".maps") = {
	.values = { &buf_a },
};

SEC("tc")
int demo_run(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct locked_value *lv;
	struct stats *s;
	struct event ev;
	__u64 *slot;
	void *buf;
	__u64 run;

	s = bpf_map_lookup_elem(&stats, &zero);
	if (!s)
		return 1;
	run = __sync_fetch_and_add(&s->runs, 1);
	__sync_fetch_and_add(&s->counter, 1);

	lv = bpf_map_lookup_elem(&locked, &zero);
	if (!lv) {
		__sync_fetch_and_add(&s->misses, 1);
		return 2;
	}
	bpf_spin_lock(&lv->lock);
	lv->count++;
	ev.count = lv->count;
	bpf_spin_unlock(&lv->lock);

	buf = bpf_map_lookup_elem(&buffers, &zero);
	if (buf) {
		slot = bpf_map_lookup_elem(buf, &zero);
		if (slot)
			__sync_fetch_and_add(slot, 1);
	}

	if (run % EVENT_EVERY == 0) {
		ev.run = run;
		if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0) == 0)
			__sync_fetch_and_add(&s->produced, 1);
		else
			__sync_fetch_and_add(&s->dropped, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
