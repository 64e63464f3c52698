package maps

import (
	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/internal/errno"
)

// Errors returned by map commands. Each matches the kernel's errno for the
// same mistake under errors.Is.
var (
	// ErrKeyNotExist is returned when a key is not in the map (ENOENT), and
	// by NextKey after the last key.
	ErrKeyNotExist error = errno.New("key does not exist", unix.ENOENT)
	// ErrKeyExist is returned by an update with NoExist of a present key (EEXIST).
	ErrKeyExist error = errno.New("key already exists", unix.EEXIST)
	// ErrFull is returned when a hash map is full, or an array index is past
	// max_entries on update (E2BIG), and for sizes past the kernel's limits.
	ErrFull error = errno.New("map is full or argument too big", unix.E2BIG)
	// ErrInvalid is returned for an invalid argument or flag (EINVAL).
	ErrInvalid error = errno.New("invalid argument", unix.EINVAL)
	// ErrPermission is returned for a write through a read-only handle or to
	// a frozen map, or a read through a write-only handle (EPERM).
	ErrPermission error = errno.New("operation not permitted", unix.EPERM)
	// ErrAccess is returned when a value with a spin lock is combined with
	// BPF_F_RDONLY_PROG or BPF_F_WRONLY_PROG (EACCES).
	ErrAccess error = errno.New("permission denied", unix.EACCES)
	// ErrBusy is returned when freezing an already frozen map (EBUSY).
	ErrBusy error = errno.New("map is busy", unix.EBUSY)
	// ErrNotSupported is the kernel's ENOTSUPP (524): the command does not
	// exist for this map type.
	ErrNotSupported error = errno.New("operation not supported by this map type (ENOTSUPP)", errno.ENOTSUPP)
	// ErrOpNotSupported is EOPNOTSUPP (95), e.g. a spin lock in a per-CPU map.
	ErrOpNotSupported error = errno.New("operation not supported (EOPNOTSUPP)", unix.EOPNOTSUPP)
	// ErrNoSpace is returned by a hash lookup batch whose buffers cannot hold
	// the next bucket (ENOSPC).
	ErrNoSpace error = errno.New("no space", unix.ENOSPC)
	// ErrBadMap is returned when an inner map given to a map-in-map does not
	// exist (the kernel's EBADF for a bad inner map fd).
	ErrBadMap error = errno.New("no such map", unix.EBADF)
	// ErrTimeout is returned by WaitUnreferenced when the map is still
	// referenced when the timeout passes (ETIMEDOUT).
	ErrTimeout error = errno.New("timed out", unix.ETIMEDOUT)
	// ErrNoMemory is returned when the region cannot hold the map (ENOMEM).
	ErrNoMemory error = errno.New("out of memory", unix.ENOMEM)
)
