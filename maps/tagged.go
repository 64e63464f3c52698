package maps

// Free-list heads of preallocated elements are tagged like the region's
// (shm/tagged.go): low 40 bits an offset, high 24 bits an ABA counter.
const (
	offMask = 1<<40 - 1
	tagOne  = 1 << 40
)

func nextHead(old, off uint64) uint64 { return (old&^offMask + tagOne) | off }
