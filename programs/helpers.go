package programs

import "github.com/userbpf/userbpf/vm"

// Helpers returns the helper table programs run with: the VM's own
// (time, ids, printk, probe_read, loop) and the map, lock and ring-buffer
// helpers of this package.
func Helpers() vm.HelperTable {
	t := vm.DefaultHelpers()
	t.Set(fnMapLookupElem, helperMapLookup)
	t.Set(fnMapUpdateElem, helperMapUpdate)
	t.Set(fnMapDeleteElem, helperMapDelete)
	t.Set(fnMapPushElem, helperMapPush)
	t.Set(fnMapPopElem, popPeek("bpf_map_pop_elem", true))
	t.Set(fnMapPeekElem, popPeek("bpf_map_peek_elem", false))
	t.Set(fnMapLookupPercpuElem, helperMapLookupPercpu)
	t.Set(fnForEachMapElem, helperForEachMapElem)
	t.Set(fnSpinLock, helperSpinLock)
	t.Set(fnSpinUnlock, helperSpinUnlock)
	t.Set(fnRingbufOutput, helperRingbufOutput)
	t.Set(fnRingbufReserve, helperRingbufReserve)
	t.Set(fnRingbufSubmit, commitHelper("bpf_ringbuf_submit", false))
	t.Set(fnRingbufDiscard, commitHelper("bpf_ringbuf_discard", true))
	t.Set(fnRingbufQuery, helperRingbufQuery)
	t.Set(fnUserRingbufDrain, helperUserRingbufDrain)
	t.Set(fnTailCall, helperTailCall)
	t.Set(fnDynptrRead, helperDynptrRead)
	t.Set(fnDynptrData, helperDynptrData)
	return t
}
