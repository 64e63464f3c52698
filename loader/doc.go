// Package loader turns eBPF ELF objects compiled by clang (-target bpf)
// into maps in a region and programs for package vm.
//
// Loading has two steps. Parse reads the object with cilium/ebpf's
// kernel-free LoadCollectionSpec and checks everything that does not need
// a region: each map declaration becomes a maps.Spec (the value's BTF
// decides where a struct bpf_spin_lock lives), each program's instructions
// become vm.Insns with map references turned into indexes, bpf-to-bpf calls
// and callback references (BPF_PSEUDO_FUNC) resolved to relative offsets,
// and kfunc calls recorded by name. An unknown map type, relocation,
// section or helper is an error naming it (and the instruction); no input
// makes it panic.
//
// ObjectSpec.Load then creates the maps in a region, or reuses them: every
// map of an object is pinned by name, as LIBBPF_PIN_BY_NAME pins in
// bpffs. A map of the same name already in the region is reused if its
// spec is compatible (same type, key and value size, max_entries, flags
// and spin lock), and is an error naming both specs otherwise. Global data
// (.data, .bss, .rodata and their suffixed forms) become single-entry
// arrays named "<object>.<section>" as libbpf names them; a new one gets
// the section's contents, .rodata is then frozen and read-only to
// programs (vm.MapRef.ReadOnly). Inner-map templates of ARRAY_OF_MAPS and
// HASH_OF_MAPS are created first, as maps named "<outer>.inner", and the
// static .values of an outer map are stored once all maps exist.
//
// Load does both steps for a file.
package loader
