package lock_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/userbpf/userbpf/internal/futex"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/shm"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// The shared block every multi-process test works on, at an offset the
// parent allocates in the region and passes to its children:
//
//	0    word   uint32  the lock (a SpinLock or a Mutex, by the test's kind)
//	4    gate   uint32  start gate: children wait (futex) until it is non-zero
//	8    count  uint64  plain counter guarded by the lock (never atomic)
//	16   stop   uint32  benchmark: the child stops hammering when non-zero
//	20   —      uint32
//	24   pairs  uint64  benchmark: lock/unlock pairs the child made
//	32   —      (padding to one 64-byte block)
const blockSize = 64

type block struct {
	word  uint32
	gate  atomic.Uint32
	count uint64
	stop  atomic.Uint32
	_     uint32
	pairs atomic.Uint64
}

// locker is what SpinLock and Mutex have in common.
type locker interface {
	Lock(h *lock.Holder) (recovered bool)
	Unlock()
	Owner() uint32
}

// kinds are the two lock types every multi-process test runs on.
var kinds = []string{"spin", "mutex"}

// lockerOf views the word at p as the lock of kind.
func lockerOf(kind string, p unsafe.Pointer) locker {
	switch kind {
	case "spin":
		return (*lock.SpinLock)(p)
	case "mutex":
		return (*lock.Mutex)(p)
	}
	panic("unknown lock kind " + kind)
}

// recoveries is the region counter for kind's recoveries, and its name in
// Stats().Counters.
func recoveries(kind string) (shm.Counter, string) {
	if kind == "spin" {
		return shm.CounterSpinRecoveries, "spin_lock_recoveries"
	}
	return shm.CounterMutexRecoveries, "mutex_recoveries"
}

// newRegion creates a region in a temporary directory and allocates one
// zeroed block in it.
func newRegion(tb testing.TB) (r *shm.Region, path string, off uint64) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "region")
	r, err := shm.Create(path, shm.Options{CPUs: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r, path, alloc(tb, r)
}

func alloc(tb testing.TB, r *shm.Region) uint64 {
	tb.Helper()
	off, err := r.Alloc(blockSize)
	if err != nil {
		tb.Fatal(err)
	}
	return off
}

func blockAt(r *shm.Region, off uint64) *block { return (*block)(r.Pointer(off)) }

// rawWord is the lock word of any locker, for checks of its exact bits.
// Both lock types are documented to be exactly one 32-bit word.
func rawWord(l any) *atomic.Uint32 {
	switch l := l.(type) {
	case *lock.SpinLock:
		return (*atomic.Uint32)(unsafe.Pointer(l))
	case *lock.Mutex:
		return (*atomic.Uint32)(unsafe.Pointer(l))
	}
	panic(fmt.Sprintf("rawWord(%T)", l))
}

// openChild attaches a child process to the region named by args[0] and
// returns the block at args[1].
func openChild(args []string) (*shm.Region, *block, error) {
	if len(args) < 2 {
		return nil, nil, fmt.Errorf("want region path and offset, got %q", args)
	}
	off, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return nil, nil, err
	}
	r, err := shm.Open(args[0])
	if err != nil {
		return nil, nil, err
	}
	return r, blockAt(r, off), nil
}

func offArg(off uint64) string { return strconv.FormatUint(off, 10) }

// awaitGate blocks until the parent opens the block's start gate.
func awaitGate(b *block) {
	for b.gate.Load() == 0 {
		futex.Wait(&b.gate, 0, 0)
	}
}

// openGate lets every child blocked in awaitGate go.
func openGate(b *block) {
	b.gate.Store(1)
	futex.WakeAll(&b.gate)
}

// Children. Each is the test binary re-executed (see proctest).

// count: path off kind n — wait for the gate, then n times take the lock
// and increment the plain counter.
var _ = proctest.Register("count", func(args []string) error {
	r, b, err := openChild(args)
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	l, h := lockerOf(args[2], unsafe.Pointer(&b.word)), r.Holder()
	proctest.Ready("ready")
	awaitGate(b)
	for range n {
		if l.Lock(h) {
			return fmt.Errorf("recovered a lock no process died holding")
		}
		b.count++
		l.Unlock()
	}
	return nil
})

// hold: path off kind — take the lock, print "holding TAG", keep it until a
// line (or EOF) arrives on stdin, release it and print "released".
var _ = proctest.Register("hold", func(args []string) error {
	r, b, err := openChild(args)
	if err != nil {
		return err
	}
	defer r.Close()
	l := lockerOf(args[2], unsafe.Pointer(&b.word))
	if l.Lock(r.Holder()) {
		return fmt.Errorf("recovered a lock no process died holding")
	}
	proctest.Ready(fmt.Sprintf("holding %d", r.Tag()))
	bufio.NewReader(os.Stdin).ReadString('\n')
	b.count++
	l.Unlock()
	proctest.Ready("released")
	return nil
})

// waiter: path off kind — print "waiting TAG", take the lock, increment the
// counter, release it and print "recovered=BOOL".
var _ = proctest.Register("waiter", func(args []string) error {
	r, b, err := openChild(args)
	if err != nil {
		return err
	}
	defer r.Close()
	l := lockerOf(args[2], unsafe.Pointer(&b.word))
	proctest.Ready(fmt.Sprintf("waiting %d", r.Tag()))
	rec := l.Lock(r.Holder())
	b.count++
	l.Unlock()
	proctest.Ready(fmt.Sprintf("recovered=%v", rec))
	return nil
})

// idle: path — attach to the region, print "attached TAG" and stay until
// stdin closes. It takes a process-table slot and nothing else.
var _ = proctest.Register("idle", func(args []string) error {
	r, err := shm.Open(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	proctest.Ready(fmt.Sprintf("attached %d", r.Tag()))
	bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
})

// sleep: — do nothing until stdin closes (not even attach to a region).
var _ = proctest.Register("sleep", func([]string) error {
	io.Copy(io.Discard, os.Stdin)
	return nil
})

// hammer: path off kind — the other side of the contended benchmark:
// lock, increment, unlock until stop is set, then record its pairs.
var _ = proctest.Register("hammer", func(args []string) error {
	r, b, err := openChild(args)
	if err != nil {
		return err
	}
	defer r.Close()
	l, h := lockerOf(args[2], unsafe.Pointer(&b.word)), r.Holder()
	proctest.Ready("ready")
	var n uint64
	for b.stop.Load() == 0 {
		l.Lock(h)
		b.count++
		l.Unlock()
		n++
	}
	b.pairs.Store(n)
	return nil
})
