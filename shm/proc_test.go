package shm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
)

// startWithStdin starts a child whose stdin the test writes to.
func startWithStdin(t *testing.T, name string, args ...string) (*proctest.Child, io.WriteCloser) {
	t.Helper()
	cmd := proctest.Command(name, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := proctest.StartCmd(t, name, cmd)
	t.Cleanup(func() { in.Close() })
	return c, in
}

// tell writes one line to a child's stdin.
func tell(t *testing.T, w io.Writer, line string) {
	t.Helper()
	if _, err := io.WriteString(w, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// waitStdin blocks until the parent writes want on stdin (or closes it).
func waitStdin(in *bufio.Reader, want string) error {
	for {
		l, err := in.ReadString('\n')
		if strings.TrimSpace(l) == want {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stdin closed while waiting for %q", want)
		}
	}
}

// The attach child attaches to args[0], says "attached SLOT TAG PID", and
// then waits for "detach" on stdin before closing cleanly.
var _ = proctest.Register("attach", func(args []string) error {
	r, err := childOpen(args)
	if err != nil {
		return err
	}
	fmt.Printf("attached %d %d %d\n", r.Slot(), r.Tag(), os.Getpid())
	if err := waitStdin(bufio.NewReader(os.Stdin), "detach"); err != nil {
		return err
	}
	return r.Close()
})

type attached struct {
	c              *proctest.Child
	in             io.WriteCloser
	slot, tag, pid int
}

func attach(t *testing.T, path string) attached {
	t.Helper()
	c, in := startWithStdin(t, "attach", path)
	a := attached{c: c, in: in}
	if _, err := fmt.Sscanf(c.Line(t), "attached %d %d %d", &a.slot, &a.tag, &a.pid); err != nil {
		t.Fatal(err)
	}
	return a
}

func findProc(r *Region, tag int) (Process, bool) {
	for _, p := range r.Processes() {
		if p.Tag == uint32(tag) {
			return p, true
		}
	}
	return Process{}, false
}

// TestProcessReaped: a child that attaches and is SIGKILLed is listed as
// dead until a survivor reaps it; reaping counts it and frees its slot.
func TestProcessReaped(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	a := attach(t, path)
	p, ok := findProc(r, a.tag)
	if !ok || p.PID != a.pid || p.Slot != a.slot || !p.Alive {
		t.Fatalf("attached child: %+v, %v; want pid %d slot %d alive", p, ok, a.pid, a.slot)
	}
	if !r.Alive(uint32(a.tag)) {
		t.Fatal("Alive(child) is false while it runs")
	}
	if n := r.ReapDead(); n != 0 {
		t.Fatalf("ReapDead reaped %d live processes", n)
	}
	a.c.Kill(t)
	if r.Alive(uint32(a.tag)) {
		t.Fatal("Alive(child) is true after SIGKILL")
	}
	p, ok = findProc(r, a.tag)
	if !ok || p.Alive {
		t.Fatalf("killed child before reaping: %+v, %v; want listed as dead", p, ok)
	}
	before := r.Counter(CounterProcsReaped).Load()
	if n := r.ReapDead(); n != 1 {
		t.Fatalf("ReapDead reaped %d, want 1", n)
	}
	if got := r.Counter(CounterProcsReaped).Load(); got != before+1 {
		t.Fatalf("processes_reaped %d → %d, want +1", before, got)
	}
	if _, ok := findProc(r, a.tag); ok {
		t.Fatal("reaped child still listed")
	}
	if n := r.ReapDead(); n != 0 {
		t.Fatalf("second ReapDead reaped %d", n)
	}
	if st := r.Stats(); st.Counters["processes_reaped"] != before+1 || len(st.Processes) != 1 {
		t.Fatalf("Stats: %+v", st)
	}

	// A child that detaches cleanly is gone without being reaped.
	b := attach(t, path)
	tell(t, b.in, "detach")
	b.c.Wait(t)
	if _, ok := findProc(r, b.tag); ok || r.Alive(uint32(b.tag)) {
		t.Fatal("a detached child is still listed")
	}
	if n := r.ReapDead(); n != 0 || r.Counter(CounterProcsReaped).Load() != before+1 {
		t.Fatalf("a clean detach was counted as a reap (%d)", n)
	}
}

// TestReapOnOpen: a process attaching to a region reaps the dead it finds.
func TestReapOnOpen(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	a := attach(t, path)
	a.c.Kill(t)
	r2 := openRegion(t, path)
	if _, ok := findProc(r2, a.tag); ok {
		t.Fatal("Open did not reap the dead child")
	}
	if r.Counter(CounterProcsReaped).Load() != 1 {
		t.Fatal("the reap on Open was not counted")
	}
}

// TestSlotGeneration: a tag names one attachment only. When its slot is
// taken again (by a new process after a reap, or after a clean detach) the
// old tag is dead even though the slot is alive.
func TestSlotGeneration(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	a := attach(t, path)
	a.c.Kill(t)
	r.ReapDead()
	b := attach(t, path)
	if b.slot != a.slot {
		t.Fatalf("new child got slot %d, want the reaped slot %d", b.slot, a.slot)
	}
	if tagGen(uint32(b.tag)) == tagGen(uint32(a.tag)) || tagSlot(uint32(b.tag)) != tagSlot(uint32(a.tag)) {
		t.Fatalf("tags %#x and %#x: want the same slot, another generation", a.tag, b.tag)
	}
	if r.Alive(uint32(a.tag)) {
		t.Fatal("the killed child's tag is alive again after its slot was reused")
	}
	if !r.Alive(uint32(b.tag)) {
		t.Fatal("the new child's tag is not alive")
	}

	// The same within one process: attach, detach, attach again.
	r2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	old := r2.Tag()
	r2.Close()
	if r.Alive(old) {
		t.Fatal("a detached tag is alive")
	}
	r3 := openRegion(t, path)
	if tagSlot(r3.Tag()) != tagSlot(old) || r3.Tag() == old {
		t.Fatalf("reattached with tag %#x, old %#x: want the same slot, another generation", r3.Tag(), old)
	}
	if r.Alive(old) || !r.Alive(r3.Tag()) {
		t.Fatal("old tag alive or new tag dead after reattaching")
	}
	for _, tag := range []uint32{0, MaxProcs, 1 << 31, ^uint32(0)} {
		if r.Alive(tag) {
			t.Errorf("Alive(%#x) is true", tag)
		}
	}
}

// TestPIDReuse: a slot whose pid now belongs to a process that started at
// another time (the pid was reused) names a dead process.
func TestPIDReuse(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	r2 := openRegion(t, path) // same pid as r, its own slot
	s := r.proc(r2.Slot())
	start := s.Start.Load()
	if start == 0 || start != startTime(os.Getpid()) {
		t.Fatalf("slot records start time %d, /proc says %d", start, startTime(os.Getpid()))
	}
	if !r.Alive(r2.Tag()) {
		t.Fatal("live attachment is not alive")
	}
	s.Start.Store(start + 1)
	if r.Alive(r2.Tag()) {
		t.Fatal("a pid whose start time differs from the slot's is taken for the slot's process")
	}
	s.Start.Store(start)
	if !r.Alive(r2.Tag()) {
		t.Fatal("alive again with the right start time")
	}
}

// TestReaperDiedMidReap: a slot left in the reaping state by a reaper that
// died is reaped again by the next survivor.
func TestReaperDiedMidReap(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	victim := attach(t, path)
	reaper := attach(t, path)
	victim.c.Kill(t)
	reaper.c.Kill(t)
	// The reaper got as far as claiming the victim's slot, then died.
	s := r.proc(victim.slot)
	w := s.Word.Load()
	if !s.Word.CompareAndSwap(w, reapingWord(w, uint32(reaper.tag))) {
		t.Fatal("slot changed under the test")
	}
	if n := r.ReapDead(); n != 2 {
		t.Fatalf("ReapDead reaped %d, want the victim and its reaper", n)
	}
	if ps := r.Processes(); len(ps) != 1 {
		t.Fatalf("left in the table: %+v", ps)
	}
	if procState(s.Word.Load()) != procFree {
		t.Fatal("the half-reaped slot was not freed")
	}
}

// TestReapRecoversInflight: a block recorded in flight by a dead process is
// freed by its reaper and counted.
func TestReapRecoversInflight(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	a := attach(t, path)
	a.c.Kill(t)
	off, err := r.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	r.proc(a.slot).AllocInflight.Store(off) // as if it died inside Alloc
	if n := r.ReapDead(); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	if got := r.Counter(CounterLeaksRecovered).Load(); got != 1 {
		t.Fatalf("leaks_recovered = %d, want 1", got)
	}
	if again, _ := r.Alloc(64); again != off {
		t.Fatalf("recovered block %#x was not freed (got %#x)", off, again)
	}
}

// TestTooManyProcs fills the process table: the next attachment is refused
// with a clear error and nothing else changes.
func TestTooManyProcs(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	// Claim every free slot for this (live) process, as MaxProcs-1
	// attachments would.
	var claimed []int
	pid, start := os.Getpid(), startTime(os.Getpid())
	for i := 1; i < MaxProcs; i++ {
		s := r.proc(i)
		w := s.Word.Load()
		if procState(w) == procFree && s.Word.CompareAndSwap(w, uint64(pid)<<32|uint64(procGen(w)+1)<<2|procAlive) {
			s.Start.Store(start)
			claimed = append(claimed, i)
		}
	}
	_, err := Open(path)
	wantErr(t, err, ErrTooManyProcs, path)
	if n := r.ReapDead(); n != 0 {
		t.Fatalf("reaped %d", n)
	}
	for _, i := range claimed {
		s := r.proc(i)
		s.Start.Store(0)
		s.Word.Store(uint64(procGen(s.Word.Load())) << 2)
	}
	r2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
}

// TestOnReap: hooks registered with OnReap run for a reaped process and
// for this process's own Close.
func TestOnReap(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	type call struct {
		slot int
		tag  uint32
	}
	var calls []call
	r.OnReap(func(slot int, tag uint32) { calls = append(calls, call{slot, tag}) })
	a := attach(t, path)
	a.c.Kill(t)
	r.ReapDead()
	if len(calls) != 1 || calls[0] != (call{a.slot, uint32(a.tag)}) {
		t.Fatalf("hook calls %+v, want the dead child's slot %d tag %#x", calls, a.slot, a.tag)
	}
	slot, tag := r.Slot(), r.Tag()
	r.Close()
	if len(calls) != 2 || calls[1] != (call{slot, tag}) {
		t.Fatalf("hook calls %+v after Close", calls)
	}
}

// TestClosedRegion: every operation on a closed region fails cleanly.
func TestClosedRegion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r")
	r, err := Create(path, Options{SizeLimit: smallLimit})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	for name, err := range map[string]error{
		"Alloc":     func() error { _, err := r.Alloc(1); return err }(),
		"Free":      r.Free(1),
		"LeaseCPU":  func() error { _, err := r.LeaseCPU(); return err }(),
		"Publish":   r.Publish(Object{Name: "x"}),
		"Lookup":    func() error { _, err := r.Lookup("x"); return err }(),
		"Unpublish": func() error { _, err := r.Unpublish("x"); return err }(),
		"Bytes":     func() error { _, err := r.Bytes(0, 1); return err }(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed region: %v, want ErrClosed", name, err)
		}
	}
	if _, ok := r.TryLeaseCPU(); ok {
		t.Error("TryLeaseCPU on a closed region succeeded")
	}
	if r.ReapDead() != 0 || r.Objects() != nil || r.Processes() != nil {
		t.Error("listing a closed region returned something")
	}
}

// TestRegisterWindow: a process that has claimed a slot but not yet
// recorded its start time must not look dead to a reaper, even though the
// slot's previous occupant left its own start time behind.
func TestRegisterWindow(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	a := attach(t, path)
	tell(t, a.in, "detach")
	a.c.Wait(t)
	// Claim the child's old slot for this process, as register's first
	// step does; its start time is not written yet.
	s := r.proc(a.slot)
	w := s.Word.Load()
	if procState(w) != procFree {
		t.Fatalf("slot %d not free after a clean detach", a.slot)
	}
	claimed := uint64(os.Getpid())<<32 | uint64(procGen(w)+1)<<2 | procAlive
	if !s.Word.CompareAndSwap(w, claimed) {
		t.Fatal("slot changed under the test")
	}
	if n := r.ReapDead(); n != 0 {
		t.Fatalf("ReapDead reaped %d: a live process registering was taken for dead", n)
	}
	if s.Word.Load() != claimed {
		t.Fatal("the registering process lost its slot")
	}
	s.Word.Store(uint64(procGen(claimed)) << 2)
}

// TestReaperAliveNotReplaced: a slot being reaped by a live process is left
// to it; once that process is gone, the next survivor finishes the reap.
func TestReaperAliveNotReplaced(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	r2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	victim := attach(t, path)
	victim.c.Kill(t)
	// r2 claims the victim's slot for reaping and is (for the test)
	// suspended there.
	s := r.proc(victim.slot)
	w := s.Word.Load()
	if !s.Word.CompareAndSwap(w, reapingWord(w, r2.Tag())) {
		t.Fatal("slot changed under the test")
	}
	if n := r.ReapDead(); n != 0 {
		t.Fatalf("ReapDead took over a reap from a live reaper (%d)", n)
	}
	r2.Close()
	if n := r.ReapDead(); n != 1 {
		t.Fatalf("ReapDead did not take over from a detached reaper (%d)", n)
	}
	if procState(s.Word.Load()) != procFree || r.Counter(CounterProcsReaped).Load() != 1 {
		t.Fatal("the reap was not finished and counted")
	}
}
