package shm

import "time"

// Stats is a snapshot of a region for `userbpf region show`.
type Stats struct {
	Path       string
	Limit      uint64 // size limit in bytes
	FileSize   uint64 // bytes of the file backed so far
	HeapSize   uint64 // bytes of the heap handed out to size classes and runs
	FreeBytes  uint64 // bytes on the allocator's free lists
	UsedBytes  uint64 // heap bytes in use (HeapSize - FreeBytes)
	NumCPU     int
	LeasedCPUs int
	Objects    int
	Processes  []Process
	Created    time.Time
	Epoch      uint64
	Counters   map[string]uint64
}

// CounterNames names the header counters as `region show` prints them.
var CounterNames = [numCounters]string{
	CounterSpinRecoveries:  "spin_lock_recoveries",
	CounterMutexRecoveries: "mutex_recoveries",
	CounterProcsReaped:     "processes_reaped",
	CounterReadersReaped:   "rcu_readers_reaped",
	CounterLeasesReaped:    "cpu_leases_reaped",
	CounterLeaksRecovered:  "leaks_recovered",
	CounterGracePeriods:    "grace_periods",
	CounterFullErrors:      "region_full_errors",
}

// Stats gathers the snapshot. Free space is read from the free lists while
// other processes may change them, so it is approximate under load.
func (r *Region) Stats() Stats {
	rep := r.Check()
	heap := rep.Spans * SpanSize
	free := min(rep.FreeBytes(), heap)
	st := Stats{
		Path:       r.path,
		Limit:      r.hdrCopy.limit,
		FileSize:   r.hdr.FileSize.Load(),
		HeapSize:   heap,
		FreeBytes:  free,
		UsedBytes:  heap - free,
		NumCPU:     int(r.hdrCopy.ncpu),
		LeasedCPUs: r.LeasedCPUs(),
		Objects:    len(r.Objects()),
		Processes:  r.Processes(),
		Created:    time.Unix(0, r.hdr.Created),
		Epoch:      r.hdr.Epoch.Load(),
		Counters:   make(map[string]uint64, numCounters),
	}
	for c, name := range CounterNames {
		st.Counters[name] = r.hdr.Counters[c].Load()
	}
	return st
}
