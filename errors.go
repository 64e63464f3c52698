package userbpf

import "github.com/userbpf/userbpf/shm"

// Errors, each matching both itself and the errno the kernel would return
// under errors.Is.
var (
	// ErrNotRegion: the file is not a userbpf region (EINVAL).
	ErrNotRegion = shm.ErrNotRegion
	// ErrTruncated: the region file is shorter than its header says (EINVAL).
	ErrTruncated = shm.ErrTruncated
	// ErrVersion: the region has another format version (EINVAL).
	ErrVersion = shm.ErrVersion
	// ErrPermission: the caller may not open the region file (EACCES).
	ErrPermission = shm.ErrPermission
	// ErrExist: the region or object already exists (EEXIST).
	ErrExist = shm.ErrExist
	// ErrNotExist: the region or object does not exist (ENOENT).
	ErrNotExist = shm.ErrNotExist
	// ErrBusy: the region has live processes attached (EBUSY).
	ErrBusy = shm.ErrBusy
	// ErrRegionFull: the region reached its size limit (ENOMEM).
	ErrRegionFull = shm.ErrRegionFull
	// ErrCorrupt: shared state failed a consistency check (EUCLEAN).
	ErrCorrupt = shm.ErrCorrupt
)
