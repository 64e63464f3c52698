package shm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// errnoError is a sentinel that also matches a kernel errno under errors.Is,
// so callers may test either the sentinel or the errno a kernel call would
// have returned.
type errnoError struct {
	msg   string
	errno unix.Errno
}

func (e *errnoError) Error() string { return e.msg }

// Is reports whether target is this sentinel's errno.
func (e *errnoError) Is(target error) bool { return target == e.errno }

// Errors returned when opening or creating a region.
var (
	// ErrNotRegion is returned when the file is not a userbpf region (bad magic).
	ErrNotRegion error = &errnoError{"not a userbpf region", unix.EINVAL}
	// ErrTruncated is returned when the file is shorter than its header says.
	ErrTruncated error = &errnoError{"region file is truncated", unix.EINVAL}
	// ErrVersion is returned when the region was written by another format version.
	ErrVersion error = &errnoError{"unsupported region format version", unix.EINVAL}
	// ErrLayout is returned when the header's layout parameters are inconsistent.
	ErrLayout error = &errnoError{"inconsistent region layout", unix.EINVAL}
	// ErrPermission is returned when the caller may not open the region file.
	ErrPermission error = &errnoError{"permission denied", unix.EACCES}
	// ErrExist is returned by Create when the path already exists, and by
	// Publish when the name is taken.
	ErrExist error = &errnoError{"already exists", unix.EEXIST}
	// ErrNotExist is returned when a region or a named object does not exist.
	ErrNotExist error = &errnoError{"does not exist", unix.ENOENT}
	// ErrBusy is returned by Remove when live processes are still attached.
	ErrBusy error = &errnoError{"region is in use", unix.EBUSY}
)

// Errors returned while a region is in use.
var (
	// ErrRegionFull is returned when growing the region would pass its size
	// limit or the file system is out of space (ENOMEM, as the kernel reports
	// a failed map allocation).
	ErrRegionFull error = &errnoError{"region is full", unix.ENOMEM}
	// ErrTooManyProcs is returned when every process-table slot is taken.
	ErrTooManyProcs error = &errnoError{"too many processes attached", unix.EUSERS}
	// ErrCorrupt is returned when shared state fails a consistency check (an
	// offset out of range, a broken free list). Something wrote into the region
	// that should not have.
	ErrCorrupt error = &errnoError{"region is corrupt", unix.EUCLEAN}
	// ErrInvalid is returned for a bad argument (size, name, offset).
	ErrInvalid error = &errnoError{"invalid argument", unix.EINVAL}
	// ErrClosed is returned when the region has been closed.
	ErrClosed error = &errnoError{"region is closed", unix.EBADF}
)

// PathError records a failure on a region file: the operation, the path and
// the cause, which matches one of the sentinels above under errors.Is.
type PathError struct {
	Op   string
	Path string
	Err  error
}

// Error reads "OP region PATH: CAUSE".
func (e *PathError) Error() string { return fmt.Sprintf("%s region %s: %v", e.Op, e.Path, e.Err) }

// Unwrap returns the cause.
func (e *PathError) Unwrap() error { return e.Err }

func pathErr(op, path string, err error) error { return &PathError{Op: op, Path: path, Err: err} }

// detail attaches a human explanation to a sentinel while keeping it
// matchable with errors.Is.
func detail(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// osErr maps an OS error from opening a file onto our sentinels.
func osErr(err error) error {
	switch {
	case errors.Is(err, unix.EACCES):
		return ErrPermission
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (%v)", ErrPermission, err)
	case errors.Is(err, unix.ENOENT):
		return ErrNotExist
	case errors.Is(err, unix.EEXIST):
		return ErrExist
	case errors.Is(err, unix.EISDIR):
		return detail(ErrNotRegion, "it is a directory")
	}
	return err
}
