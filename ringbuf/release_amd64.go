package ringbuf

import (
	"unsafe"

	"github.com/userbpf/userbpf/internal/release"
)

// storeHeader writes a record header, length and owner in one 8-byte store
// (little-endian: the length is the word at offset 0), with release
// ordering.
func storeHeader(h *recHeader, length, owner uint32) {
	release.Store64((*uint64)(unsafe.Pointer(h)), uint64(length)|uint64(owner)<<32)
}

// prefetchWrite asks for the two cache lines at addr for writing (they are
// the consumer's, who read them last): a producer issues it well ahead of
// its position so that the ownership transfers overlap instead of stalling
// each record's locked instructions.
//
//go:noescape
func prefetchWrite(addr unsafe.Pointer)

// prefetchRead asks for the two cache lines at addr for reading.
//
//go:noescape
func prefetchRead(addr unsafe.Pointer)
