package programs

import (
	"errors"

	"golang.org/x/sys/unix"
)

// negErrno is what a helper returns for err: the kernel's -errno.
func negErrno(err error) uint64 {
	var e interface{ Errno() unix.Errno }
	if errors.As(err, &e) {
		return neg(e.Errno())
	}
	var n unix.Errno
	if errors.As(err, &n) {
		return neg(n)
	}
	return neg(unix.EINVAL)
}

func neg(e unix.Errno) uint64 { n := -int64(e); return uint64(n) }
