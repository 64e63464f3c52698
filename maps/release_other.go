//go:build !amd64

package maps

import "sync/atomic"

// Release stores (see release_amd64.go): other architectures reorder
// plain stores, so these are atomic (a store-release on arm64).

func storeRelease32(addr *uint32, v uint32) { atomic.StoreUint32(addr, v) }

func storeRelease64(addr *uint64, v uint64) { atomic.StoreUint64(addr, v) }
