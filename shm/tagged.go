package shm

// A tagged free-list head packs a block offset and an ABA counter into one
// word so that a pop is a single compare-and-swap:
//
//	 63            40 39                         0
//	+----------------+----------------------------+
//	| tag (24 bits)  | offset of first free block |
//	+----------------+----------------------------+
//
// Every successful push or pop increments the tag, so a stale head seen by a
// preempted process can never be swapped in after the list changed.
const (
	offBits = 40
	offMask = 1<<offBits - 1
	tagOne  = 1 << offBits
)

// nextHead builds the head that replaces old and points at off.
func nextHead(old, off uint64) uint64 { return (old&^offMask + tagOne) | off }

// HeadOffset is the offset a tagged head points at (0: empty list). Other
// packages that keep tagged stacks in the region (the maps' element
// lists) use it and NextHead, so there is one encoding.
func HeadOffset(h uint64) uint64 { return h & offMask }

// NextHead is the tagged head that replaces old and points at off.
func NextHead(old, off uint64) uint64 { return nextHead(old, off) }
