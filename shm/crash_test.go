package shm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"github.com/userbpf/userbpf/internal/proctest"
)

// A ledger is a block in the region where one worker process records the
// blocks it holds, so that the parent can account for every block after
// the worker is killed. Each slot is 0 or the offset of a live block, and
// changes with one store:
//
//	allocate: off = Alloc(n); write off into the block's first word; slot = off
//	free:     slot = 0; Free(off)
//
// so at any instruction the ledger lists exactly the blocks the worker owns,
// except for at most the one it is between the allocator and its slot.
const ledgerSlots = 1024

func ledgerView(r *Region, off uint64) []atomic.Uint64 {
	return unsafe.Slice((*atomic.Uint64)(r.Pointer(off)), ledgerSlots)
}

// newLedger allocates a zeroed ledger.
func newLedger(t testing.TB, r *Region) uint64 {
	t.Helper()
	off, err := r.Alloc(ledgerSlots * 8)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// worker is the allocating loop of a child process.
type worker struct {
	r     *Region
	slots []atomic.Uint64
	live  []int // ledger indices in use
	idle  []int // ledger indices free
	rng   *rand.Rand
	size  uint64 // the size being allocated (for crash hooks)
}

func newWorker(r *Region, ledger, seed uint64) *worker {
	w := &worker{r: r, slots: ledgerView(r, ledger), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range w.slots {
		if w.slots[i].Load() != 0 {
			w.live = append(w.live, i) // inherited from a killed predecessor
		} else {
			w.idle = append(w.idle, i)
		}
	}
	return w
}

// record puts a block this worker now owns into its ledger.
func (w *worker) record(off uint64) error {
	if len(w.idle) == 0 {
		return errors.New("ledger full")
	}
	*(*uint64)(w.r.Pointer(off)) = off
	j := w.idle[len(w.idle)-1]
	w.idle = w.idle[:len(w.idle)-1]
	w.slots[j].Store(off)
	w.live = append(w.live, j)
	return nil
}

func (w *worker) free() error {
	k := w.rng.IntN(len(w.live))
	j := w.live[k]
	w.live[k] = w.live[len(w.live)-1]
	w.live = w.live[:len(w.live)-1]
	off := w.slots[j].Load()
	if got := *(*uint64)(w.r.Pointer(off)); got != off {
		return fmt.Errorf("live block %#x was overwritten: first word %#x", off, got)
	}
	w.slots[j].Store(0)
	w.idle = append(w.idle, j)
	return w.r.Free(off)
}

func (w *worker) step() error {
	if len(w.live) > 0 && (len(w.idle) < 8 || w.rng.IntN(100) < 45) {
		return w.free()
	}
	w.size = randomSize(w.rng, true)
	off, err := w.r.Alloc(w.size)
	if errors.Is(err, ErrRegionFull) && len(w.live) > 0 {
		return w.free()
	}
	if err != nil {
		return err
	}
	return w.record(off)
}

// The alloc-worker child attaches to args[0] and allocates and frees
// blocks recorded in the ledger at args[1], with seed args[2], forever.
// Mode args[3] is "tick" (print a line every 64 steps, for a parent that
// kills it at random moments) or "site" (kill itself at the args[5]-th
// time it passes crash site args[4]; print "dying SITE" first).
var _ = proctest.Register("alloc-worker", func(args []string) error {
	r, err := Open(args[0])
	if err != nil {
		return err
	}
	w := newWorker(r, parseU64(args[1]), parseU64(args[2]))
	mode := args[3]
	if mode == "site" {
		armCrash(w, args[4], int(parseU64(args[5])))
	}
	proctest.Ready("ready")
	for i := 1; ; i++ {
		if err := w.step(); err != nil {
			return err
		}
		if mode == "tick" && i%64 == 0 {
			proctest.Ready("tick")
		}
		if mode == "site" && i == 200000 {
			proctest.Ready("done")
			return r.Close()
		}
	}
})

// armCrash makes the process kill itself the n-th time it reaches site.
// For the spare-described site, the first carve the process makes is
// beaten (by itself, reentrantly) to installing its span, so that it takes
// the path that keeps a span it could not install.
func armCrash(w *worker, name string, n int) {
	target := crashSite(-1)
	for s := crashSite(0); s < numCrashSites; s++ {
		if s.String() == name {
			target = s
		}
	}
	if target < 0 {
		fmt.Fprintf(os.Stderr, "no crash site %q\n", name)
		os.Exit(2)
	}
	hits, nested := 0, false
	crashHook = func(s crashSite) {
		if nested {
			return
		}
		if target == siteSpareDescribed && s == siteCarveReserved {
			nested = true
			off, err := w.r.Alloc(w.size)
			nested = false
			if err == nil {
				err = w.record(off)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "nested alloc: %v\n", err)
				os.Exit(2)
			}
			return
		}
		if s != target {
			return
		}
		if hits++; hits == n {
			proctest.Ready("dying " + s.String())
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns: the signal is on its way
		}
	}
}

// audit accounts for every block the heap has handed out: each is on a
// free list, recorded live in a ledger, or missing (leaked by a kill).
// Spans reserved but never described are counted apart, in groups of
// adjacent spans (one kill leaks at most one group: one reservation).
type audit struct {
	rep         Report
	live, free  int
	missing     []string
	unpublished uint64 // spans
	groups      int
}

func (a audit) String() string {
	missing := a.missing
	if len(missing) > 8 {
		missing = append(missing[:8:8], "…")
	}
	return fmt.Sprintf("%d live, %d free, %d missing %v, %d unpublished spans in %d groups",
		a.live, a.free, len(a.missing), missing, a.unpublished, a.groups)
}

func auditHeap(t testing.TB, r *Region, ledgers []uint64) audit {
	t.Helper()
	a := audit{rep: mustCheck(t, r)}
	heap := r.hdrCopy.heapOff

	free := map[uint64]bool{}
	for c := 0; c < numClasses; c++ {
		for off := r.hdr.ClassHead[c].v.Load() & offMask; off != 0; off = r.link(off).Load() {
			free[off] = true
		}
	}
	for i := range r.hdr.RunHead {
		for off := r.hdr.RunHead[i].Load() & offMask; off != 0; off = r.link(off).Load() {
			free[off] = true
		}
	}
	a.free = len(free)

	live := map[uint64]bool{}
	for _, l := range ledgers {
		live[l] = true
		for i := range ledgerSlots {
			off := ledgerView(r, l)[i].Load()
			if off == 0 {
				continue
			}
			switch {
			case live[off]:
				t.Fatalf("block %#x is recorded live twice", off)
			case free[off]:
				t.Fatalf("live block %#x is on a free list", off)
			}
			if got := *(*uint64)(r.Pointer(off)); got != off {
				t.Fatalf("live block %#x was overwritten: first word %#x", off, got)
			}
			live[off] = true
		}
	}
	a.live = len(live)

	// Every block start, from the span table (and the carving cursors).
	cursor := map[uint64]uint64{} // span → cursor offset
	cursorClass := map[uint64]int{}
	for c := 0; c < numClasses; c++ {
		if off := r.hdr.Carve[c].Load(); off != 0 {
			s := (off - heap) / SpanSize
			cursor[s], cursorClass[s] = off, c
		}
	}
	starts := map[uint64]bool{}
	account := func(off uint64, what string) {
		starts[off] = true
		if !free[off] && !live[off] {
			a.missing = append(a.missing, fmt.Sprintf("%s@%#x", what, off))
		}
	}
	prevUnpublished := false
	brk := r.hdr.Brk.Load()
	for s := uint64(0); s < brk; s++ {
		base := heap + s*SpanSize
		k := r.spanKind(s)
		if c, ok := cursorClass[s]; ok && k == spanUnknown {
			k = spanClassTag + byte(c)
		}
		unpublished := false
		switch {
		case k >= spanClassTag && k < spanClassTag+numClasses:
			size := classSize(int(k - spanClassTag))
			end := base + SpanSize
			if off, ok := cursor[s]; ok {
				end = off
			}
			for off := base; off < base+SpanSize; off += size {
				if off < end {
					account(off, fmt.Sprint(size))
				} else if free[off] || live[off] {
					t.Fatalf("block %#x was never carved but is free or live", off)
				}
			}
		case k == spanRunHead:
			n := r.runLength(base)
			account(base, fmt.Sprintf("run%d", n))
			s += n - 1
		default:
			unpublished = true
			a.unpublished++
			if !prevUnpublished {
				a.groups++
			}
		}
		prevUnpublished = unpublished
	}
	for off := range live {
		if !starts[off] {
			t.Fatalf("live block %#x is not a block the heap handed out", off)
		}
	}
	for off := range free {
		if !starts[off] {
			t.Fatalf("free block %#x is not a block the heap handed out", off)
		}
	}
	sort.Strings(a.missing)
	return a
}

// TestCrashSites kills a worker at each step of the allocator in turn and
// checks that exactly what the allocator promises is lost: nothing, one
// block, or one unpublished reservation, and that a block caught
// mid-allocation is recovered by the reaper.
func TestCrashSites(t *testing.T) {
	type want struct {
		missing, groups int
		recovered       uint64
	}
	for _, tc := range []struct {
		site crashSite
		n    int
		want want
	}{
		{sitePopped, 1, want{missing: 1}},
		{sitePopped, 500, want{missing: 1}},
		{siteInflight, 1, want{recovered: 1}},
		{siteInflight, 300, want{recovered: 1}},
		{sitePushLinked, 1, want{missing: 1}},
		{sitePushLinked, 200, want{missing: 1}},
		{siteCarveReserved, 1, want{groups: 1}},
		{siteCarveReserved, 6, want{groups: 1}},
		{siteCarveInstalled, 1, want{missing: 1}},
		{siteCarveInstalled, 5, want{missing: 1}},
		{siteSpareDescribed, 1, want{missing: 1}},
		{siteRunReserved, 1, want{groups: 1}},
		{siteRunReserved, 4, want{groups: 1}},
		{siteRunDescribed, 1, want{recovered: 1}},
		{siteRunDescribed, 3, want{recovered: 1}},
		{siteGrown, 1, want{}},
		{siteGrown, 3, want{}},
	} {
		t.Run(fmt.Sprintf("%v-%d", tc.site, tc.n), func(t *testing.T) {
			r, path := newRegion(t, Options{SizeLimit: 256 << 20, CPUs: 2})
			ledger := newLedger(t, r)
			c := proctest.Start(t, "alloc-worker", path, fmt.Sprint(ledger), fmt.Sprint(tc.n), "site", tc.site.String(), fmt.Sprint(tc.n))
			c.Expect(t, "ready")
			c.Expect(t, "dying "+tc.site.String())
			c.Kill(t)
			if n := r.ReapDead(); n != 1 {
				t.Fatalf("ReapDead reaped %d processes, want the killed worker", n)
			}
			a := auditHeap(t, r, []uint64{ledger})
			got := want{missing: len(a.missing), groups: a.groups, recovered: r.Counter(CounterLeaksRecovered).Load()}
			if got != tc.want {
				t.Fatalf("killed at %v: %+v, want %+v\n%v", tc.site, got, tc.want, a)
			}
			if a.rep.Unpublished != a.unpublished {
				t.Fatalf("Check counts %d unpublished spans, the audit %d", a.rep.Unpublished, a.unpublished)
			}
			// The region goes on working for a new worker on the same ledger.
			c2 := proctest.Start(t, "alloc-worker", path, fmt.Sprint(ledger), "99", "tick")
			c2.Expect(t, "ready")
			for range 20 {
				c2.Expect(t, "tick")
			}
			c2.Kill(t)
			r.ReapDead()
			a2 := auditHeap(t, r, []uint64{ledger})
			if len(a2.missing) > len(a.missing)+1 || a2.groups > a.groups+1 {
				t.Fatalf("after one more kill: %v (before: %v)", a2, a)
			}
		})
	}
}

// TestAllocSIGKILL runs several worker processes on one region and kills
// them at random moments, round after round. After each round every block
// must be free, recorded live by its worker, or one of at most one leak
// per kill; and Check must find nothing wrong.
func TestAllocSIGKILL(t *testing.T) {
	const lanes, rounds = 3, 8
	r, path := newRegion(t, Options{SizeLimit: 256 << 20, CPUs: 2})
	ledgers := make([]uint64, lanes)
	for i := range ledgers {
		ledgers[i] = newLedger(t, r)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	kills := 0
	for round := 0; round < rounds; round++ {
		cs := make([]*proctest.Child, lanes)
		for i := range cs {
			cs[i] = proctest.Start(t, "alloc-worker", path, fmt.Sprint(ledgers[i]), fmt.Sprint(round*lanes+i), "tick")
		}
		for _, c := range cs {
			c.Expect(t, "ready")
		}
		for _, i := range rng.Perm(lanes) {
			for range 1 + rng.IntN(40) {
				cs[i].Expect(t, "tick")
			}
			cs[i].Kill(t)
			kills++
		}
		if n := r.ReapDead(); n != lanes {
			t.Fatalf("round %d: reaped %d processes, want %d", round, n, lanes)
		}
		if ps := r.Processes(); len(ps) != 1 {
			t.Fatalf("round %d: processes left in the table: %+v", round, ps)
		}
		a := auditHeap(t, r, ledgers)
		if len(a.missing)+a.groups > kills {
			t.Fatalf("round %d: %d kills lost more than one block each: %v", round, kills, a)
		}
		if round == rounds-1 {
			t.Logf("%d kills: %v; %d blocks recovered by reapers", kills, a, r.Counter(CounterLeaksRecovered).Load())
		}
	}
	// Everything the workers held can be freed, and then only the leaks
	// are not free.
	for _, l := range ledgers {
		for i := range ledgerSlots {
			if off := ledgerView(r, l)[i].Swap(0); off != 0 {
				if err := r.Free(off); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	a := auditHeap(t, r, ledgers)
	if len(a.missing)+a.groups > kills {
		t.Fatalf("after freeing everything: %v", a)
	}
}
