//go:build !amd64

package release

import "sync/atomic"

// Store32 stores v at addr with release ordering.
func Store32(addr *uint32, v uint32) { atomic.StoreUint32(addr, v) }

// Store64 stores v at addr with release ordering.
func Store64(addr *uint64, v uint64) { atomic.StoreUint64(addr, v) }
