// Package errno builds sentinel errors that also match a kernel errno under
// errors.Is, so callers may test either the sentinel or the errno the
// kernel would have returned for the same mistake.
package errno

import "golang.org/x/sys/unix"

// ENOTSUPP is the kernel-internal "operation not supported" (524). It has no
// libc name and is distinct from EOPNOTSUPP (95); the map code returns both.
const ENOTSUPP = unix.Errno(524)

// Error is a sentinel bound to an errno.
type Error struct {
	msg   string
	errno unix.Errno
}

// New returns a sentinel with message msg that matches errno.
func New(msg string, errno unix.Errno) *Error { return &Error{msg, errno} }

// Error returns the message.
func (e *Error) Error() string { return e.msg }

// Is reports whether target is this sentinel's errno.
func (e *Error) Is(target error) bool { return target == e.errno }

// Errno is the errno the sentinel matches.
func (e *Error) Errno() unix.Errno { return e.errno }
