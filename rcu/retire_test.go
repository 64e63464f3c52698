package rcu

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/shm"
)

// The retire test's blocks: blockWords words, word i of generation g holds
// pattern(g, i). The published word is g<<40 | offset, so a reader knows
// which generation it must find.
const (
	blockWords = 32
	offBits    = 40
)

func pattern(gen uint64, i int) uint64 { return gen*0x9e3779b97f4a7c15 ^ uint64(i) }

func blockWordsAt(r *shm.Region, off uint64) []atomic.Uint64 {
	return unsafe.Slice((*atomic.Uint64)(r.Pointer(off)), blockWords)
}

// Child "checker": until told to stop, enters a section, loads the current
// block and checks every word of it, then leaves. Every 64th section it
// pauses inside the section after loading the offset, so a block freed too
// early is likely to be reused and refilled under it. It prints the number
// of sections and of torn blocks it saw.
var _ = proctest.Register("checker", func(args []string) error {
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
	pub, stop := word(r, offs[0], ctlPublished), word(r, offs[0], ctlStop)
	var sections, torn int
	var first string
	for ; stop.Load() == 0; sections++ {
		rd.Lock()
		p := pub.Load()
		gen, off := p>>offBits, p&(1<<offBits-1)
		if sections%64 == 0 {
			time.Sleep(20 * time.Microsecond)
		}
		ws := blockWordsAt(r, off)
		for i := range ws {
			if v := ws[i].Load(); v != pattern(gen, i) {
				if torn == 0 {
					first = fmt.Sprintf("block %#x generation %d: word %d is %#x, want %#x", off, gen, i, v, pattern(gen, i))
				}
				torn++
				break
			}
		}
		rd.Unlock()
		if sections == 0 {
			proctest.Ready("running")
		}
	}
	proctest.Ready(fmt.Sprintf("%d %d %s", sections, torn, first))
	return nil
})

// TestRetireUnderConcurrentReaders: blocks retired while readers in other
// processes may hold them are never freed early. The parent keeps replacing
// the published block with a new generation and retiring the old one; freed
// blocks of the class are reused at once by the next Alloc and refilled, so
// a block freed before its readers left shows up as torn in a child. At the
// end every block is back on the free lists.
func TestRetireUnderConcurrentReaders(t *testing.T) {
	r, d := newRegion(t)
	ctl := newCtl(t, r)
	pub := word(r, ctl, ctlPublished)

	publish := func(gen uint64) uint64 {
		off, err := r.Alloc(blockWords * 8)
		if err != nil {
			t.Fatal(err)
		}
		if off >= 1<<offBits {
			t.Fatalf("offset %#x does not fit the published word", off)
		}
		ws := blockWordsAt(r, off)
		for i := range ws {
			ws[i].Store(pattern(gen, i))
		}
		old := pub.Swap(gen<<offBits | off)
		return old & (1<<offBits - 1)
	}
	publish(1)

	const children = 3
	var cs []*proctest.Child
	for range children {
		cs = append(cs, startChild(t, "checker", r.Path(), u64(ctl)))
	}
	for _, c := range cs {
		c.Expect(t, "running")
	}

	const generations = 6000
	rng := rand.New(rand.NewPCG(1, 2))
	barriers, ringFull := 0, false
	for gen := uint64(2); gen <= generations; gen++ {
		if err := d.Retire(publish(gen)); err != nil {
			t.Fatal(err)
		}
		if d.Pending() >= ringCap-1 {
			ringFull = true // the next Retire runs a grace period itself
		}
		// Mostly short grace periods, so blocks are freed and reused while
		// readers run; in the middle, a long stretch that fills the ring.
		if (gen < 2000 || gen > 3500) && rng.IntN(4) == 0 {
			d.Barrier()
			barriers++
		}
	}
	word(r, ctl, ctlStop).Store(1)
	for _, c := range cs {
		f := strings.SplitN(c.Line(t), " ", 3)
		sections, _ := strconv.Atoi(f[0])
		torn, _ := strconv.Atoi(f[1])
		if torn != 0 {
			t.Errorf("child %d saw %d torn blocks in %d sections; first: %s", c.Cmd.Process.Pid, torn, sections, f[2])
		}
		if sections == 0 {
			t.Errorf("child %d ran no section", c.Cmd.Process.Pid)
		}
		t.Logf("child %d: %d sections", c.Cmd.Process.Pid, sections)
		c.Wait(t)
	}
	t.Logf("%d generations, %d barriers, ring filled: %v", generations, barriers, ringFull)
	if !ringFull {
		t.Error("the retire ring never filled: the full-ring path went untested")
	}

	if err := d.Retire(pub.Swap(0) & (1<<offBits - 1)); err != nil {
		t.Fatal(err)
	}
	d.Barrier()
	if n := d.Pending(); n != 0 {
		t.Errorf("%d blocks pending after Barrier", n)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Free(ctl); err != nil {
		t.Fatal(err)
	}
	checkAllFree(t, r)
}

// TestRetireRingFullInOneProcess: retiring far more blocks than the ring
// holds, with no Barrier, keeps at most a ring's worth pending; Barrier then
// frees all of them and Close frees the ring itself.
func TestRetireRingFullInOneProcess(t *testing.T) {
	r, d := newRegion(t)
	for i := range 3 * ringCap {
		off, err := r.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Retire(off); err != nil {
			t.Fatal(err)
		}
		if n := d.Pending(); n > ringCap {
			t.Fatalf("after %d retires, %d pending: more than the ring holds", i+1, n)
		}
	}
	d.Barrier()
	if n := d.Pending(); n != 0 {
		t.Errorf("%d blocks pending after Barrier", n)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkAllFree(t, r)
}

// TestRetireWaitsForReaderInOtherProcess: Barrier frees a retired block only
// after a reader that entered before the retire has left.
func TestRetireWaitsForReaderInOtherProcess(t *testing.T) {
	r, d := newRegion(t)
	ctl := newCtl(t, r)
	off, err := r.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "slow-reader", r.Path(), u64(ctl))
	c.Expect(t, "in")
	if err := d.Retire(off); err != nil {
		t.Fatal(err)
	}
	d.Barrier()
	if word(r, ctl, ctlMarker).Load() != 1 {
		t.Fatal("Barrier freed a block while a reader in another process was in its section")
	}
	if n := d.Pending(); n != 0 {
		t.Errorf("%d blocks pending after Barrier", n)
	}
	c.Wait(t)
}

// Child "retirer": allocates and retires blocks (no grace period runs, so
// they all stay on its retire ring), optionally enters a read-side section,
// says how many blocks are pending and waits to be killed.
var _ = proctest.Register("retirer", func(args []string) error {
	path, offs, err := childArgs(args, 2)
	if err != nil {
		return err
	}
	_, d, err := attach(path)
	if err != nil {
		return err
	}
	for i := range offs[0] {
		off, err := d.r.Alloc(64 << (i % 4))
		if err != nil {
			return err
		}
		if err := d.Retire(off); err != nil {
			return err
		}
	}
	if offs[1] != 0 {
		rd, err := d.NewReader()
		if err != nil {
			return err
		}
		rd.Lock()
	}
	proctest.Ready(strconv.Itoa(d.Pending()))
	select {}
})

// TestRetireRingOfDeadProcess: a process killed with blocks on its retire
// ring does not leak them: the survivor that reaps it frees them, and the
// ring, after a grace period. The reap comes from an explicit ReapDead, or
// from a grace period that finds the dead process inside a section.
func TestRetireRingOfDeadProcess(t *testing.T) {
	for _, tc := range []struct {
		name      string
		inSection uint64
		reap      func(*testing.T, *shm.Region, *Domain)
	}{
		{"ReapDead", 0, func(t *testing.T, r *shm.Region, _ *Domain) {
			if n := r.ReapDead(); n != 1 {
				t.Errorf("ReapDead reaped %d processes, want 1", n)
			}
		}},
		{"Synchronize", 1, func(_ *testing.T, _ *shm.Region, d *Domain) { d.Synchronize() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, d := newRegion(t)
			const blocks = 300
			c := startChild(t, "retirer", r.Path(), u64(blocks), u64(tc.inSection))
			if got := c.Line(t); got != strconv.Itoa(blocks) {
				t.Fatalf("child has %s blocks pending, want %d", got, blocks)
			}
			rep := r.Check()
			if rep.Spans == 0 {
				t.Fatal("the child allocated nothing?")
			}
			c.Kill(t)
			tc.reap(t, r, d)
			if got := r.Counter(shm.CounterProcsReaped).Load(); got != 1 {
				t.Errorf("processes_reaped = %d, want 1", got)
			}
			if got := r.Counter(shm.CounterReadersReaped).Load(); got != tc.inSection {
				t.Errorf("rcu_readers_reaped = %d, want %d", got, tc.inSection)
			}
			if d.Pending() != 0 {
				t.Errorf("the dead process's blocks went onto this process's ring")
			}
			checkAllFree(t, r)
		})
	}
}

// Child "retire-exit": retires blocks and returns without closing the domain
// or the region: the process exits with a full ring and a live table entry.
var _ = proctest.Register("retire-exit", func(args []string) error {
	path, _, err := childArgs(args, 0)
	if err != nil {
		return err
	}
	_, d, err := attach(path)
	if err != nil {
		return err
	}
	for range 100 {
		off, err := d.r.Alloc(128)
		if err != nil {
			return err
		}
		if err := d.Retire(off); err != nil {
			return err
		}
	}
	return nil
})

// TestRetireRingOfProcessReapedByOpen: a process that exited without
// detaching, with blocks on its retire ring, is reaped by the next attach
// of the region. Its blocks must not leak: shm.OpenWithHooks lets the RCU
// domain register its reap hook before the reaping starts.
func TestRetireRingOfProcessReapedByOpen(t *testing.T) {
	r, _ := newRegion(t)
	c := startChild(t, "retire-exit", r.Path())
	c.Wait(t)
	r2, err := shm.OpenWithHooks(r.Path(), func(s *shm.Region) { New(s) }) // reaps the child
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if got := r.Counter(shm.CounterProcsReaped).Load(); got != 1 {
		t.Fatalf("processes_reaped = %d, want 1", got)
	}
	checkAllFree(t, r)
}
