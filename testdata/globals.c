/* Global data: .rodata (const volatile configuration user space may set
 * before loading, frozen afterwards), .data (initialized), .bss (zeroed),
 * and a string literal in .rodata.str1.1 for bpf_printk. */
#include "common.h"

const volatile __u32 cfg_mult = 3;
const volatile __u64 cfg_offset = 1000;
const volatile char cfg_name[8] = "userbpf";

__u64 total = 100;                 /* .data */
__u32 table[4] = { 7, 11, 13, 17 }; /* .data */
__u64 calls;                       /* .bss */
__u32 hist[4];                     /* .bss */

static const __u32 weights[4] = { 1, 10, 100, 1000 }; /* .rodata */

/* accumulate: total += table[calls % 4] * cfg_mult + weights[...];
 * returns total + cfg_offset + cfg_name[1]. */
SEC("tc")
int accumulate(struct __sk_buff *skb)
{
	__u32 i = calls % 4;

	calls++;
	hist[i]++;
	table[i] += i;
	total += table[i] * cfg_mult + weights[i];
	return total + cfg_offset + cfg_name[1];
}

/* hello: bpf_printk (bpf_trace_printk) with a format string from
 * .rodata.str1.1. Returns what the helper returns plus calls * 100. */
SEC("tc")
int hello(struct __sk_buff *skb)
{
	long n = bpf_printk("userbpf hello %d", (int)calls);

	return n + calls * 100;
}

char LICENSE[] SEC("license") = "GPL";
