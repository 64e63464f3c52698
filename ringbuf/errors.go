package ringbuf

import (
	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/internal/errno"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/shm"
)

// Errors of ring buffer operations. Each matches the errno the kernel (or
// libbpf) returns for the same mistake under errors.Is.
var (
	// ErrTooBig is returned when a record cannot fit the ring at all:
	// round_up(size + 8, 8) is larger than the ring, or size is above the
	// kernel's record limit (E2BIG).
	ErrTooBig error = errno.New("record is larger than the ring buffer", unix.E2BIG)
	// ErrFull is returned when there is no room for a record now (ENOSPC,
	// as libbpf's user_ring_buffer__reserve). The record is dropped and
	// counted; nothing in the ring is overwritten. Output's error matches
	// EAGAIN as well, as bpf_ringbuf_output returns -EAGAIN.
	ErrFull error = errno.New("ring buffer is full", unix.ENOSPC)
	// ErrInvalid is returned for bad flags, a record that is not a pending
	// reservation of this ring, or the wrong ring type for the operation
	// (EINVAL).
	ErrInvalid error = errno.New("invalid argument", unix.EINVAL)
	// ErrBusy is returned when another live process (or another Reader of
	// this process) owns the ring's consumer side (EBUSY, as a concurrent
	// bpf_user_ringbuf_drain).
	ErrBusy error = errno.New("ring buffer consumer is busy", unix.EBUSY)
	// ErrClosed is returned by a closed Ring or Reader (EBADF).
	ErrClosed error = errno.New("ring buffer is closed", unix.EBADF)
	// ErrCorrupt is returned when the ring's positions or a record header
	// are inconsistent (written by something that does not follow the
	// protocol): it is the region's ErrCorrupt (EUCLEAN).
	ErrCorrupt = shm.ErrCorrupt
	// ErrPermission is returned when consuming a RINGBUF or producing into a
	// USER_RINGBUF through a read-only handle or a frozen map (EPERM).
	ErrPermission = maps.ErrPermission
)
