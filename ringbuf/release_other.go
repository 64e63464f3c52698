//go:build !amd64

package ringbuf

import (
	"sync/atomic"
	"unsafe"
)

// storeRelease64 stores v at addr with (at least) release ordering.
func storeRelease64(addr *uint64, v uint64) { atomic.StoreUint64(addr, v) }

// storeHeader writes a record header: the owner first, then the length.
func storeHeader(h *recHeader, length, owner uint32) {
	h.Owner.Store(owner)
	h.Len.Store(length)
}

func prefetchWrite(addr unsafe.Pointer) {}
func prefetchRead(addr unsafe.Pointer)  {}
