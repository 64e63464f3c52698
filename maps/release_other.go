//go:build !amd64

package maps

import "sync/atomic"

// Release stores (see release_amd64.go): other architectures reorder
// plain stores, so these are atomic (a store-release on arm64).

func storeRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

func storeRelease64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
