package shm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// growStep is the least the file grows by at a time.
const growStep = 1 << 20

// ensureBacked makes sure the file is at least top bytes long and that the
// space is allocated, so that a store anywhere below top cannot fault.
//
// fallocate only ever extends a file, so processes growing it at the same
// time cannot shrink each other's work (ftruncate could), and on tmpfs a
// full file system is an ENOSPC here instead of a SIGBUS on first touch.
func (r *Region) ensureBacked(top uint64) error {
	have := r.hdr.FileSize.Load()
	if have >= top {
		return nil
	}
	want := max(top, have+have/4, have+growStep)
	want = min(roundUp(want, SpanSize), r.hdrCopy.limit)
	if err := allocateFile(r.fd, have, want); err != nil {
		if want > top && allocateFile(r.fd, have, top) == nil {
			want = top
		} else {
			return pathErr("grow", r.path, fmt.Errorf("%w: backing %d bytes: %v", ErrRegionFull, top, err))
		}
	}
	crashPoint(siteGrown)
	maxStore(&r.hdr.FileSize, want)
	return nil
}

// allocateFile extends fd to cover [from, to) with allocated space. On a file
// system without fallocate it falls back to ftruncate under an exclusive
// flock, re-checking the size so that it never shrinks the file.
func allocateFile(fd int, from, to uint64) error {
	for {
		err := unix.Fallocate(fd, 0, int64(from), int64(to-from))
		if err == unix.EINTR {
			continue
		}
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
		break
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return err
	}
	defer unix.Flock(fd, unix.LOCK_UN)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if uint64(st.Size) >= to {
		return nil
	}
	return unix.Ftruncate(fd, int64(to))
}
