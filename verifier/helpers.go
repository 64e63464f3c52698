package verifier

import (
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/vm"
)

// argKind is what a helper or kfunc argument must be.
type argKind uint8

const (
	aNone       argKind = iota // not an argument: not checked
	aAny                       // any initialised value (flags, numbers)
	aSize                      // a constant size > 0 for the previous memory argument
	aSizeOrZero                // a constant size ≥ 0 for the previous memory argument
	aMapPtr                    // a map (proto.maps restricts the type)
	aKey                       // key_size readable bytes (the map is argument 1)
	aValue                     // value_size readable bytes
	aValueOut                  // value_size writable bytes
	aMemRead                   // readable bytes, size in the next argument
	aMemWrite                  // writable bytes (may be uninitialised), size next
	aFunc                      // a callback: a subprogram reference
	aCtx                       // the program's context
	aRecord                    // a ring-buffer record from bpf_ringbuf_reserve (released)
	aDynptr                    // a struct bpf_dynptr
	aLock                      // a bpf_spin_lock field
)

// retKind is what a helper returns in R0.
type retKind uint8

const (
	rScalar    retKind = iota
	rLookup            // map value or NULL (an inner map or NULL for map-in-map)
	rRecord            // ring-buffer record of the size in argument 2, or NULL; acquired
	rMemOrNull         // memory of the size in argument 3, or NULL (bpf_dynptr_data)
)

// proto is a helper's prototype.
type proto struct {
	name string
	args [5]argKind
	ret  retKind
	// maps, if set, are the map types argument 1 may be; notMaps the
	// types it may not be.
	maps, notMaps []maps.Type
	// cb describes the callback argument's arguments, if any.
	cb func(v *verifier, st *state, args *[5]reg) [5]reg
	// lockOK says the helper may be called while a lock is held.
	lockOK bool
	// constSize says the size argument must be a known constant (it sizes
	// the memory returned), not just bounded.
	constSize bool
}

var noElemMaps = []maps.Type{maps.RingBuf, maps.UserRingBuf, maps.Queue, maps.Stack, maps.BloomFilter, maps.ProgArray}

// helpers are the prototypes of every helper the VM and package programs
// implement (vm.DefaultHelpers and programs.Helpers), as the kernel's
// bpf_func_proto declares them.
var helpers = map[int32]*proto{
	vm.FnMapLookupElem:       {name: "bpf_map_lookup_elem", args: [5]argKind{aMapPtr, aKey}, ret: rLookup, notMaps: noElemMaps},
	vm.FnMapUpdateElem:       {name: "bpf_map_update_elem", args: [5]argKind{aMapPtr, aKey, aValue, aAny}, notMaps: noElemMaps},
	vm.FnMapDeleteElem:       {name: "bpf_map_delete_elem", args: [5]argKind{aMapPtr, aKey}, notMaps: noElemMaps},
	vm.FnMapLookupPercpuElem: {name: "bpf_map_lookup_percpu_elem", args: [5]argKind{aMapPtr, aKey, aAny}, ret: rLookup, maps: []maps.Type{maps.PerCPUArray, maps.PerCPUHash, maps.LRUPerCPUHash}},
	vm.FnMapPushElem:         {name: "bpf_map_push_elem", args: [5]argKind{aMapPtr, aValue, aAny}, maps: []maps.Type{maps.Queue, maps.Stack, maps.BloomFilter}},
	vm.FnMapPopElem:          {name: "bpf_map_pop_elem", args: [5]argKind{aMapPtr, aValueOut}, maps: []maps.Type{maps.Queue, maps.Stack}},
	vm.FnMapPeekElem:         {name: "bpf_map_peek_elem", args: [5]argKind{aMapPtr, aValueOut}, maps: []maps.Type{maps.Queue, maps.Stack, maps.BloomFilter}},
	vm.FnForEachMapElem: {name: "bpf_for_each_map_elem", args: [5]argKind{aMapPtr, aFunc, aAny, aAny},
		notMaps: []maps.Type{maps.RingBuf, maps.UserRingBuf, maps.Queue, maps.Stack, maps.BloomFilter, maps.ProgArray, maps.LPMTrie},
		cb: func(v *verifier, st *state, a *[5]reg) [5]reg {
			m := a[0].m
			return [5]reg{{k: kMapPtr, m: m}, {k: kMapKey, m: m}, {k: kMapValue, m: m}, a[2]}
		}},
	vm.FnLoop: {name: "bpf_loop", args: [5]argKind{aAny, aFunc, aAny, aAny},
		cb: func(v *verifier, st *state, a *[5]reg) [5]reg { return [5]reg{scalar(), a[2]} }},
	vm.FnUserRingbufDrain: {name: "bpf_user_ringbuf_drain", args: [5]argKind{aMapPtr, aFunc, aAny, aAny}, maps: []maps.Type{maps.UserRingBuf},
		cb: func(v *verifier, st *state, a *[5]reg) [5]reg { return [5]reg{{k: kDynptr}, a[2]} }},
	vm.FnSpinLock:           {name: "bpf_spin_lock", args: [5]argKind{aLock}},
	vm.FnSpinUnlock:         {name: "bpf_spin_unlock", args: [5]argKind{aLock}, lockOK: true},
	vm.FnRingbufOutput:      {name: "bpf_ringbuf_output", args: [5]argKind{aMapPtr, aMemRead, aSizeOrZero, aAny}, maps: []maps.Type{maps.RingBuf}},
	vm.FnRingbufReserve:     {name: "bpf_ringbuf_reserve", args: [5]argKind{aMapPtr, aSize, aAny}, ret: rRecord, maps: []maps.Type{maps.RingBuf}, constSize: true},
	vm.FnRingbufSubmit:      {name: "bpf_ringbuf_submit", args: [5]argKind{aRecord, aAny}},
	vm.FnRingbufDiscard:     {name: "bpf_ringbuf_discard", args: [5]argKind{aRecord, aAny}},
	vm.FnRingbufQuery:       {name: "bpf_ringbuf_query", args: [5]argKind{aMapPtr, aAny}, maps: []maps.Type{maps.RingBuf}},
	vm.FnTailCall:           {name: "bpf_tail_call", args: [5]argKind{aCtx, aMapPtr, aAny}, maps: []maps.Type{maps.ProgArray}},
	fnDynptrRead:            {name: "bpf_dynptr_read", args: [5]argKind{aMemWrite, aSizeOrZero, aDynptr, aAny, aAny}},
	fnDynptrData:            {name: "bpf_dynptr_data", args: [5]argKind{aDynptr, aAny, aSizeOrZero}, ret: rMemOrNull, constSize: true},
	vm.FnKtimeGetNs:         {name: "bpf_ktime_get_ns"},
	vm.FnKtimeGetBootNs:     {name: "bpf_ktime_get_boot_ns"},
	vm.FnKtimeGetCoarseNs:   {name: "bpf_ktime_get_coarse_ns"},
	vm.FnJiffies64:          {name: "bpf_jiffies64"},
	vm.FnGetPrandomU32:      {name: "bpf_get_prandom_u32"},
	vm.FnGetSmpProcessorID:  {name: "bpf_get_smp_processor_id"},
	vm.FnGetCurrentPidTgid:  {name: "bpf_get_current_pid_tgid"},
	vm.FnGetCurrentUIDGid:   {name: "bpf_get_current_uid_gid"},
	vm.FnGetCurrentComm:     {name: "bpf_get_current_comm", args: [5]argKind{aMemWrite, aSize}},
	vm.FnTracePrintk:        {name: "bpf_trace_printk", args: [5]argKind{aMemRead, aSize}},
	vm.FnProbeRead:          {name: "bpf_probe_read", args: [5]argKind{aMemWrite, aSizeOrZero, aAny}},
	vm.FnProbeReadUser:      {name: "bpf_probe_read_user", args: [5]argKind{aMemWrite, aSizeOrZero, aAny}},
	vm.FnProbeReadKernel:    {name: "bpf_probe_read_kernel", args: [5]argKind{aMemWrite, aSizeOrZero, aAny}},
	vm.FnProbeReadStr:       {name: "bpf_probe_read_str", args: [5]argKind{aMemWrite, aSizeOrZero, aAny}},
	vm.FnProbeReadUserStr:   {name: "bpf_probe_read_user_str", args: [5]argKind{aMemWrite, aSizeOrZero, aAny}},
	vm.FnProbeReadKernelStr: {name: "bpf_probe_read_kernel_str", args: [5]argKind{aMemWrite, aSizeOrZero, aAny}},
}

// Helper numbers package vm does not name.
const (
	fnDynptrRead = 201
	fnDynptrData = 203
)
