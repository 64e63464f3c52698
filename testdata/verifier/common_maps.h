/* Maps shared by the verifier's known-good and known-bad programs. */
#ifndef USERBPF_VERIFIER_COMMON_MAPS_H
#define USERBPF_VERIFIER_COMMON_MAPS_H

#include "../common.h"

struct counter {
	__u64 packets;
	struct bpf_spin_lock lock; /* offset 8 */
	__u32 last;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u64);
	__type(value, __u64);
} wide SEC(".maps");

#endif
