package maps

import "fmt"

// Type is a map type, numbered as the kernel's enum bpf_map_type.
type Type uint32

// Map types implemented here.
const (
	Hash          Type = 1
	Array         Type = 2
	PerCPUHash    Type = 5
	PerCPUArray   Type = 6
	LRUHash       Type = 9
	LRUPerCPUHash Type = 10
	ProgArray     Type = 3
	ArrayOfMaps   Type = 12
	HashOfMaps    Type = 13
	LPMTrie       Type = 11
	Queue         Type = 22
	Stack         Type = 23
	BloomFilter   Type = 30
	RingBuf       Type = 27
	UserRingBuf   Type = 31
)

var typeNames = map[Type]string{
	Hash: "hash", Array: "array", PerCPUHash: "percpu_hash", PerCPUArray: "percpu_array",
	LRUHash: "lru_hash", LRUPerCPUHash: "lru_percpu_hash",
	ArrayOfMaps: "array_of_maps", HashOfMaps: "hash_of_maps",
	LPMTrie: "lpm_trie", Queue: "queue", Stack: "stack", BloomFilter: "bloom_filter",
	RingBuf: "ringbuf", UserRingBuf: "user_ringbuf", ProgArray: "prog_array",
}

// String returns the name bpftool uses for the type.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type_%d", uint32(t))
}

// ParseType reads a bpftool type name.
func ParseType(s string) (Type, bool) {
	for t, n := range typeNames {
		if n == s {
			return t, true
		}
	}
	return 0, false
}

func (t Type) perCPU() bool { return t == PerCPUArray || t == PerCPUHash || t == LRUPerCPUHash }

// keyless says the type has no keys (key_size 0, key always nil).
func (t Type) keyless() bool {
	return t == Queue || t == Stack || t == BloomFilter || t == RingBuf || t == UserRingBuf
}

// Map creation flags (map_flags), as in the kernel UAPI.
const (
	FlagNoPrealloc    = 1 << 0
	FlagNoCommonLRU   = 1 << 1
	FlagNumaNode      = 1 << 2
	FlagRdOnly        = 1 << 3
	FlagWrOnly        = 1 << 4
	FlagStackBuildID  = 1 << 5
	FlagZeroSeed      = 1 << 6
	FlagRdOnlyProg    = 1 << 7
	FlagWrOnlyProg    = 1 << 8
	FlagClone         = 1 << 9
	FlagMmapable      = 1 << 10
	FlagPreserveElems = 1 << 11
	FlagInnerMap      = 1 << 12

	flagAccessMask = FlagRdOnly | FlagWrOnly | FlagRdOnlyProg | FlagWrOnlyProg
)

// Element command flags, as in the kernel UAPI.
const (
	UpdateAny     = 0 // BPF_ANY: create or update
	UpdateNoExist = 1 // BPF_NOEXIST: create only
	UpdateExist   = 2 // BPF_EXIST: update only
	FlagLock      = 4 // BPF_F_LOCK: copy the value under its spin lock

	// FlagWaitGrace (userbpf's own, for ARRAY_OF_MAPS and HASH_OF_MAPS):
	// the update or delete returns only after an RCU grace period, so no
	// reader can still use the inner map it replaced — what the kernel
	// always does (a synchronize_rcu per update); here it is opt-in, and
	// Region.Synchronize after many flips costs one grace period for all.
	FlagWaitGrace = 1 << 31
)

// roundUp8 is the kernel's round_up(x, 8): the stride of values.
func roundUp8(x uint32) uint32 { return (x + 7) &^ 7 }
