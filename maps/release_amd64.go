package maps

// Release stores. A writer publishes a linked element, or a new one-word
// value, with a store that must not become visible before the stores that
// came before it: a release. amd64 keeps stores in program order (TSO), so
// a plain MOV is a release, where sync/atomic's Store is an XCHG: a full
// fence that waits for every pending store and miss. The stores are
// assembly functions so that the compiler cannot move memory accesses
// across them. An aligned 4- or 8-byte MOV is single-copy atomic: readers
// loading the word concurrently see the old or the new value.

//go:noescape
func storeRelease32(addr *uint32, v uint32)

//go:noescape
func storeRelease64(addr *uint64, v uint64)
