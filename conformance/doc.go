// Package conformance is the differential conformance suite: it runs the
// same map operations on the running kernel's eBPF maps (through raw
// bpf(2) calls) and on userbpf maps (in a scratch region) and compares
// errno numbers (ENOTSUPP 524 and EOPNOTSUPP 95 kept apart), returned
// values, key sets, and the get_next_key order where the kernel's is
// deterministic (arrays, and hash maps created with BPF_F_ZERO_SEED).
//
// The cases follow the checklist of tools/testing/selftests/bpf/test_maps.c
// (shared/reference/kernel-map-semantics.md §8) for ARRAY, PERCPU_ARRAY,
// HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH (and QUEUE, STACK,
// BLOOM_FILTER and LPM_TRIE: cases_keyless.go, cases_lpm.go, where bloom
// filters created with BPF_F_ZERO_SEED must give the kernel's false
// positives and LPM walks the kernel's post-order): create-time validation
// and its order, every element and batch command's errno for every
// mistake, freeze, read-only and write-only handles, per-CPU value layout,
// bpf_spin_lock values (BTF on the kernel side, an explicit lock offset on
// ours), iteration while deleting, and seeded random sequences. LRU
// eviction victims differ by design, so LRU sequences check each side
// against the rules given its own contents instead of against each other.
// Where userbpf deliberately differs (a spin lock in an LRU hash value)
// the case asserts both behaviours and is labelled a documented deviation.
//
// Run returns a JSON-friendly Report; when bpf(2) is unavailable the
// report says it skipped and why.
package conformance
