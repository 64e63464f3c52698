package shm

// NewObjectID hands out a region-wide object ID (1, 2, …), as the kernel
// gives each map an ID: map-in-map lookups return inner maps by it.
func (r *Region) NewObjectID() uint32 { return r.hdr.LastID.Add(1) }
