package rcu

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/shm"
)

// waitEpochPast waits until a grace period has started after epoch e (the
// global epoch moved past e). It polls a shared word; it is not a sleep
// standing in for synchronization.
func waitEpochPast(w shm.RCUWords, e uint64) {
	for w.Epoch.Load() <= e {
		time.Sleep(50 * time.Microsecond)
	}
}

// Child "slow-reader": enters a section, says "in", waits (inside the
// section) until the parent's grace period has started, lingers, sets the
// marker and only then leaves.
var _ = proctest.Register("slow-reader", func(args []string) error {
	path, offs, err := childArgs(args, 1)
	if err != nil {
		return err
	}
	r, d, err := attach(path)
	if err != nil {
		return err
	}
	defer r.Close()
	rd, err := d.NewReader()
	if err != nil {
		return err
	}
	defer rd.Close()
	rd.Lock()
	entered := rd.slot.Epoch.Load()
	proctest.Ready("in")
	waitEpochPast(d.w, entered)
	time.Sleep(20 * time.Millisecond) // widen the window a Synchronize that does not wait would fall into
	word(r, offs[0], ctlMarker).Store(1)
	rd.Unlock()
	return nil
})

// TestSynchronizeWaitsForReaderInOtherProcess: a grace period covers a
// read-side section in another process. The child sets the marker just
// before it leaves a section it entered before Synchronize was called, so
// Synchronize must not return before the marker is set.
func TestSynchronizeWaitsForReaderInOtherProcess(t *testing.T) {
	r, d := newRegion(t)
	ctl := newCtl(t, r)
	c := startChild(t, "slow-reader", r.Path(), u64(ctl))
	c.Expect(t, "in")
	gp := d.w.GracePeriods.Load()
	d.Synchronize()
	if word(r, ctl, ctlMarker).Load() != 1 {
		t.Fatal("Synchronize returned while a reader in another process was still in its section")
	}
	if got := d.w.GracePeriods.Load(); got != gp+1 {
		t.Errorf("grace_periods went from %d to %d, want +1", gp, got)
	}
	c.Wait(t)
}

// Child "late-reader": waits for the parent's go, enters a section, says
// "in" and stays in it until the parent releases it.
var _ = proctest.Register("late-reader", func(args []string) error {
	path, offs, err := childArgs(args, 1)
	if err != nil {
		return err
	}
	r, d, err := attach(path)
	if err != nil {
		return err
	}
	defer r.Close()
	rd, err := d.NewReader()
	if err != nil {
		return err
	}
	defer rd.Close()
	proctest.Ready("ready")
	for word(r, offs[0], ctlGo).Load() == 0 {
		time.Sleep(50 * time.Microsecond)
	}
	rd.Lock()
	proctest.Ready(fmt.Sprintf("in %d %d", rd.idx, rd.slot.Epoch.Load()))
	for word(r, offs[0], ctlRelease).Load() == 0 {
		time.Sleep(50 * time.Microsecond)
	}
	rd.Unlock()
	return nil
})

// TestSynchronizeIgnoresLaterReaders: Synchronize waits only for sections
// that began before it. Here a reader in this process holds the grace
// period open; once it has started, a child enters a section and stays in
// it. When the first reader leaves, Synchronize must return although the
// child is still inside: if it waited for the child, it would wait forever
// (the child leaves only after Synchronize returns).
func TestSynchronizeIgnoresLaterReaders(t *testing.T) {
	r, d := newRegion(t)
	ctl := newCtl(t, r)
	// The early reader takes a lower slot than the child's, so that a scan
	// reaches the child's slot only after the early reader has left.
	early, err := d.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	c := startChild(t, "late-reader", r.Path(), u64(ctl))
	c.Expect(t, "ready")

	early.Lock()
	e := early.slot.Epoch.Load()
	done := make(chan struct{})
	go func() {
		d.Synchronize()
		close(done)
	}()
	waitEpochPast(d.w, e)
	word(r, ctl, ctlGo).Store(1)
	var idx int
	var ce uint64
	if line := c.Line(t); !scanf(line, "in %d %d", &idx, &ce) || ce <= e || idx <= early.idx {
		t.Fatalf("child said %q; want it in a slot above %d, inside a section entered after epoch %d", line, early.idx, e)
	}
	select {
	case <-done:
		t.Fatal("Synchronize returned while a reader that began before it was still in its section")
	default:
	}
	early.Unlock()
	<-done // hangs (and the test times out) if Synchronize waits for the child
	word(r, ctl, ctlRelease).Store(1)
	c.Wait(t)
}

// Child "busy-reader": re-enters read-side sections back to back, each a
// little long, so that its slot almost always shows a reader, until told to
// stop. It prints how many sections it ran.
var _ = proctest.Register("busy-reader", func(args []string) error {
	path, offs, err := childArgs(args, 1)
	if err != nil {
		return err
	}
	r, d, err := attach(path)
	if err != nil {
		return err
	}
	defer r.Close()
	rd, err := d.NewReader()
	if err != nil {
		return err
	}
	defer rd.Close()
	stop := word(r, offs[0], ctlStop)
	n := 0
	for ; stop.Load() == 0; n++ {
		rd.Lock()
		if n == 0 {
			proctest.Ready("running")
		}
		time.Sleep(100 * time.Microsecond) // stay inside the section
		rd.Unlock()
	}
	proctest.Ready(strconv.Itoa(n))
	return nil
})

// TestSynchronizeNoStarvation: readers that keep re-entering sections (in
// other processes and in this one) never hold a grace period open for
// longer than the section they were in when it started. An implementation
// that waited for a moment with no reader at all would hang here.
func TestSynchronizeNoStarvation(t *testing.T) {
	r, d := newRegion(t)
	ctl := newCtl(t, r)
	var cs []*proctest.Child
	for range 2 {
		c := startChild(t, "busy-reader", r.Path(), u64(ctl))
		c.Expect(t, "running")
		cs = append(cs, c)
	}
	// And two goroutines of this process, whose sections overlap.
	stop := make(chan struct{})
	done := make(chan struct{})
	for range 2 {
		rd, err := d.NewReader()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer func() { done <- struct{}{} }()
			defer rd.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rd.Lock()
				runtime.Gosched()
				rd.Unlock()
			}
		}()
	}
	const rounds = 50
	for range rounds {
		d.Synchronize()
	}
	close(stop)
	<-done
	<-done
	word(r, ctl, ctlStop).Store(1)
	for _, c := range cs {
		n, err := strconv.Atoi(c.Line(t))
		if err != nil || n == 0 {
			t.Errorf("child %d: ran %d sections (%v)", c.Cmd.Process.Pid, n, err)
		}
		c.Wait(t)
	}
}

// Child "stuck-reader": enters a section, says "in" and never leaves it: the
// parent kills it there.
var _ = proctest.Register("stuck-reader", func(args []string) error {
	path, _, err := childArgs(args, 0)
	if err != nil {
		return err
	}
	_, d, err := attach(path)
	if err != nil {
		return err
	}
	rd, err := d.NewReader()
	if err != nil {
		return err
	}
	rd.Lock()
	proctest.Ready("in " + strconv.FormatUint(uint64(d.r.Tag()), 10))
	select {}
})

// TestSynchronizeDeadReader: a process SIGKILLed inside a read-side section
// does not block grace periods: Synchronize finds it dead, its slot is
// cleared and rcu_readers_reaped counts it.
func TestSynchronizeDeadReader(t *testing.T) {
	r, d := newRegion(t)
	reaped := r.Counter(shm.CounterReadersReaped)
	procs := r.Counter(shm.CounterProcsReaped)
	before, procsBefore := reaped.Load(), procs.Load()

	c := startChild(t, "stuck-reader", r.Path())
	line := c.Line(t)
	tag, err := strconv.ParseUint(line[len("in "):], 10, 32)
	if err != nil {
		t.Fatalf("child said %q", line)
	}
	if n := ownedSlots(d, uint32(tag)); n != 1 {
		t.Fatalf("child holds %d reader slots, want 1", n)
	}
	c.Kill(t)

	d.Synchronize() // hangs (and the test times out) if the dead reader blocks it

	if got := reaped.Load() - before; got != 1 {
		t.Errorf("rcu_readers_reaped grew by %d, want 1", got)
	}
	if got := procs.Load() - procsBefore; got != 1 {
		t.Errorf("processes_reaped grew by %d, want 1", got)
	}
	if n := ownedSlots(d, uint32(tag)); n != 0 {
		t.Errorf("dead child still holds %d reader slots", n)
	}
	// Later grace periods do not wait either, and the slot is free for reuse.
	d.Synchronize()
	rd, err := d.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	rd.Close()
}

// TestSynchronizeOrphanedReaderSlot: a reader slot inside a section whose
// owner tag names no live process, and that no process-table reap will
// clear (its process is long gone from the table), is cleared by the
// Synchronize that finds it, and counted once. So is a slot whose clearer
// died halfway (owner word clearingBit | dead clearer): taking it over is
// not counted again.
func TestSynchronizeOrphanedReaderSlot(t *testing.T) {
	// A tag of process-table slot 1000 with a generation it never had.
	const ghost = uint32(1000 | 77<<10)
	for _, tc := range []struct {
		name  string
		owner uint32
		count uint64
	}{
		{"dead owner", ghost, 1},
		{"dead clearer", clearingBit | ghost, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, d := newRegion(t)
			reaped := r.Counter(shm.CounterReadersReaped)
			if r.Alive(ghost) {
				t.Fatal("ghost tag is alive")
			}
			rd, err := d.NewReader()
			if err != nil {
				t.Fatal(err)
			}
			rd.slot.Owner.Store(tc.owner) // hand the slot over, inside a section
			rd.slot.Epoch.Store(d.w.Epoch.Load())
			rd.slot = nil // no longer ours: Close must not touch it

			d.Synchronize()

			if got := reaped.Load(); got != tc.count {
				t.Errorf("rcu_readers_reaped = %d, want %d", got, tc.count)
			}
			if s := &d.w.Slots[rd.idx]; s.Owner.Load() != 0 || s.Epoch.Load() != 0 {
				t.Errorf("orphaned slot not cleared: owner %#x epoch %d", s.Owner.Load(), s.Epoch.Load())
			}
		})
	}
}

// TestNewReaderTakesSlotOfDeadClearer: a slot left in the clearing state by
// a process that died while clearing it is not lost: NewReader claims it,
// with no stale epoch.
func TestNewReaderTakesSlotOfDeadClearer(t *testing.T) {
	_, d := newRegion(t)
	const ghost = uint32(1000 | 77<<10)
	rd, err := d.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	idx := rd.idx
	rd.slot.Owner.Store(clearingBit | ghost)
	rd.slot.Epoch.Store(d.w.Epoch.Load()) // died before clearing the epoch
	rd.slot = nil

	rd, err = d.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rd.idx != idx {
		t.Fatalf("NewReader took slot %d, want the dead clearer's slot %d", rd.idx, idx)
	}
	if e := rd.slot.Epoch.Load(); e != 0 {
		t.Errorf("claimed slot shows epoch %d outside any section", e)
	}
	d.Synchronize()
}
