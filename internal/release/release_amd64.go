package release

// Store32 stores v at addr with release ordering.
//
//go:noescape
func Store32(addr *uint32, v uint32)

// Store64 stores v at addr with release ordering.
//
//go:noescape
func Store64(addr *uint64, v uint64)
