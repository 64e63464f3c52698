package ringbuf

import "unsafe"

// storeRelease64 stores v at addr with release ordering: every load and
// store before it is visible to a process that loads the new value (with
// any atomic load). On amd64 a plain store is a release store (TSO); the
// store is an assembly function so that the compiler cannot move memory
// accesses across it. sync/atomic's Store is sequentially consistent, an
// XCHG that drains the store buffer, which is what the producers and the
// reader avoid on every record.
//
//go:noescape
func storeRelease64(addr *uint64, v uint64)

// storeHeader writes a record header, length and owner in one 8-byte store
// (little-endian: the length is the word at offset 0), with release
// ordering.
func storeHeader(h *recHeader, length, owner uint32) {
	storeRelease64((*uint64)(unsafe.Pointer(h)), uint64(length)|uint64(owner)<<32)
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
