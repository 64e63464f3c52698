/* A map in the legacy "maps" section (struct bpf_map_def, before BTF map
 * definitions), which older programs still use. */
#include "common.h"

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_counts = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 8,
};

/* legacy: counts[calls % 3] += 1 (created with BPF_NOEXIST first). Returns
 * the new count * 10 + key. */
__u32 calls;

SEC("tc")
int legacy(struct __sk_buff *skb)
{
	__u32 key = calls++ % 3;
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&legacy_counts, &key);
	if (!v) {
		bpf_map_update_elem(&legacy_counts, &key, &one, BPF_NOEXIST);
		return 10 + key;
	}
	*v += 1;
	return *v * 10 + key;
}

char LICENSE[] SEC("license") = "GPL";
