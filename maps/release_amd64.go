package maps

// Release stores. A writer publishes a linked element, or a new one-word
// value, with a store that must not become visible before the stores
// that came before it: a release. amd64 keeps stores in program order
// (TSO), so a plain MOV is a release, where sync/atomic's Store is an
// XCHG: a full fence that waits for every pending store and miss. Go
// emits stores in program order (they are chained through memory), so a
// plain store here stays after the writer's earlier ones. A plain aligned
// 4- or 8-byte store is also single-copy atomic: readers loading the word
// concurrently see the old or the new value.

func storeRelease32(p *uint32, v uint32) { *p = v }

func storeRelease64(p *uint64, v uint64) { *p = v }
