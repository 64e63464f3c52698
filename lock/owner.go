package lock

import "errors"

// WaitersBit is set in a lock word when a waiter may sleep on its futex.
const WaitersBit = 1 << 31

// TagMask selects the owner tag in a lock word.
const TagMask = WaitersBit - 1

// Kind tells which lock a recovery happened on.
type Kind int

const (
	// KindSpin is a SpinLock (the bpf_spin_lock word of a map value).
	KindSpin Kind = iota
	// KindMutex is a Mutex.
	KindMutex
)

// Owners answers liveness questions about lock owners. The region's process
// table implements it; tags come from there.
type Owners interface {
	// Alive reports whether tag still names a live, attached process. It is
	// called only on the slow path (after a waiter has slept).
	Alive(tag uint32) bool
	// NoteRecovery counts one lock taken over from a dead owner.
	NoteRecovery(k Kind)
}

// Holder is the identity a process locks with: its tag, and the table that
// can tell whether other tags are alive. Tag must be non-zero and fit TagMask.
type Holder struct {
	Tag    uint32
	Owners Owners
}

// checkTag panics unless h.Tag is a valid tag. A zero tag would make Lock
// succeed at once (CAS 0 → 0) and exclude no one; bit 31 would read as
// WaitersBit. The fast paths only test for zero (inlining budget); the slow
// path and TryLock call this.
func (h *Holder) checkTag() {
	if h.Tag-1 >= TagMask { // 0 wraps around
		panic(errBadTag)
	}
}

var errBadTag = errors.New("lock: holder tag is 0 or has bit 31 set")
