package userbpf

import (
	"os"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
)

// RegionOptions configure a new region. The zero value is valid.
type RegionOptions struct {
	// SizeLimit bounds the region file in bytes; 0 means 64 GiB. The limit
	// is reserved as virtual address space, only used space costs memory.
	SizeLimit uint64
	// CPUs is the number of virtual CPUs (per-CPU map slots, concurrent
	// program runs); 0 means the machine's possible CPUs.
	CPUs int
	// Mode is the region file's mode; 0 means 0600 (creator's user only).
	Mode os.FileMode
}

// Region is an attached region: the shared memory, this process's entry in
// its process table, and its RCU domain.
type Region struct {
	shm *shm.Region
	rcu *rcu.Domain
}

// RegionPath turns a region name into a path: names without a slash live
// in /dev/shm/userbpf.
func RegionPath(name string) string { return shm.Resolve(name) }

// CreateRegion creates a region file at path (see RegionPath) and attaches
// to it. It fails with ErrExist if the file exists.
func CreateRegion(path string, o RegionOptions) (*Region, error) {
	s, err := shm.Create(path, shm.Options{SizeLimit: o.SizeLimit, CPUs: o.CPUs, Mode: o.Mode})
	if err != nil {
		return nil, err
	}
	return attach(s), nil
}

// OpenRegion attaches to an existing region. Processes that died while
// attached are reaped, blocks they had retired included.
func OpenRegion(path string) (*Region, error) {
	var d *rcu.Domain
	s, err := shm.OpenWithHooks(path, func(s *shm.Region) { d = rcu.New(s) })
	if err != nil {
		return nil, err
	}
	return &Region{shm: s, rcu: d}, nil
}

func attach(s *shm.Region) *Region { return &Region{shm: s, rcu: rcu.New(s)} }

// RemoveRegion deletes a region file. A region that live processes are
// attached to is refused with ErrBusy unless force is set; attached
// processes keep working on their mapping until they close it.
func RemoveRegion(path string, force bool) error { return shm.Remove(path, force) }

// Close detaches: blocks this process retired are freed after a grace
// period, and its process-table slot is released.
func (r *Region) Close() error {
	r.rcu.Close()
	return r.shm.Close()
}

// Synchronize waits until every RCU read-side section that began before
// the call, in any attached process, has ended. One call covers any number
// of earlier updates.
func (r *Region) Synchronize() { r.rcu.Synchronize() }

// Stats returns a snapshot of the region's use.
func (r *Region) Stats() shm.Stats { return r.shm.Stats() }

// Shared returns the region layer, for tools and for the packages that
// build maps on it.
func (r *Region) Shared() *shm.Region { return r.shm }

// RCU returns the region's RCU domain in this process.
func (r *Region) RCU() *rcu.Domain { return r.rcu }

// CreateMap creates a map in the region (see maps.Spec) and returns a
// handle on it.
func (r *Region) CreateMap(spec maps.Spec) (*maps.Map, error) { return maps.Create(r.shm, r.rcu, spec) }

// OpenMap opens the map called name. flags may be maps.FlagRdOnly or
// maps.FlagWrOnly for a read-only or write-only handle.
func (r *Region) OpenMap(name string, flags uint32) (*maps.Map, error) {
	return maps.Open(r.shm, r.rcu, name, flags)
}
