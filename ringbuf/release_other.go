//go:build !amd64

package ringbuf

import (
	"unsafe"
)

// storeHeader writes a record header: the owner first, then the length.
func storeHeader(h *recHeader, length, owner uint32) {
	h.Owner.Store(owner)
	h.Len.Store(length)
}

func prefetchWrite(addr unsafe.Pointer) {}
func prefetchRead(addr unsafe.Pointer)  {}
