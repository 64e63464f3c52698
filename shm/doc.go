// Package shm is the region: one file, mapped MAP_SHARED by every process
// that attaches to it, holding userbpf's maps and the bookkeeping they share.
//
// A region is a header page, fixed-size tables (processes, RCU readers,
// virtual CPUs, the object directory, the span table) and a heap that grows
// on demand. Every process reserves the region's whole size limit of
// virtual address space once (MAP_NORESERVE); the heap grows by extending
// the file, so all processes see new space without remapping.
//
// Inside the region there are only byte offsets from its start, never
// pointers. Every shared structure has its layout drawn at its definition
// (layout.go). Every mutation of shared state is one compare-and-swap or a
// sequence of stores ordered so that a process killed between any two
// instructions leaves the region consistent: at worst a block leaks.
package shm
