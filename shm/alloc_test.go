package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// blockSize is the size of the block at off as the allocator sees it: its
// class size, or its run's length in bytes.
func blockSize(t testing.TB, r *Region, off uint64) uint64 {
	t.Helper()
	kind, ok := r.spanKindAt(off)
	switch {
	case !ok:
		t.Fatalf("block %#x is outside the heap", off)
	case kind >= spanClassTag && kind < spanClassTag+numClasses:
		return classSize(int(kind - spanClassTag))
	case kind == spanRunHead:
		return r.runLength(off) * SpanSize
	}
	t.Fatalf("block %#x is in a span of kind %#x", off, kind)
	return 0
}

// mustBytes is Bytes that fails the test on error.
func mustBytes(t testing.TB, r *Region, off, n uint64) []byte {
	t.Helper()
	b, err := r.Bytes(off, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestClassesAndRuns(t *testing.T) {
	for size := uint64(1); size <= MaxClassSize; size++ {
		c := classOf(size)
		if c < 0 || c >= numClasses || classSize(c) < size || c > 0 && classSize(c-1) >= size {
			t.Fatalf("classOf(%d) = %d (size %d): not the smallest class that fits", size, c, classSize(c))
		}
	}
	for c := 0; c < numClasses; c++ {
		if SpanSize%classSize(c) != 0 {
			t.Fatalf("class %d does not divide a span", classSize(c))
		}
	}
	if classSize(numClasses-1) != MaxClassSize {
		t.Fatalf("largest class %d, MaxClassSize %d", classSize(numClasses-1), MaxClassSize)
	}
	seen := map[int]uint64{}
	for n := uint64(1); n <= MaxLimit/SpanSize; n++ {
		m := runSpans(n)
		if m < n || (n > exactRuns && m&(m-1) != 0) {
			t.Fatalf("runSpans(%d) = %d", n, m)
		}
		l := runList(m)
		if l < 0 || l >= numRunLists {
			t.Fatalf("runList(%d) = %d, outside [0, %d)", m, l, numRunLists)
		}
		if prev, ok := seen[l]; ok && prev != m {
			t.Fatalf("runs of %d and %d spans share list %d", prev, m, l)
		}
		seen[l] = m
		if n > 1<<12 {
			n = n*2 - 1 // powers of two from here on: the loop would be long
		}
	}
}

// TestAllocSizes allocates each size class and some runs: blocks are
// aligned to their size, zeroed, and zeroed again when reused.
func TestAllocSizes(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: 256 << 20})
	heap := r.hdrCopy.heapOff
	sizes := []uint64{1, 16, 17, 64, 2048, 32768, 32769, 1 << 20}
	for c := 0; c < numClasses; c++ {
		sizes = append(sizes, classSize(c), classSize(c)-1)
	}
	sizes = append(sizes, SpanSize, 2*SpanSize+1, exactRuns*SpanSize, (exactRuns+1)*SpanSize)
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			off, err := r.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			bs := blockSize(t, r, off)
			want := classSize(classOf(min(size, MaxClassSize)))
			if size > MaxClassSize {
				want = runSpans((size+SpanSize-1)/SpanSize) * SpanSize
			}
			if bs != want {
				t.Fatalf("block of %d bytes for a request of %d, want %d", bs, size, want)
			}
			if (off-heap)%min(bs, SpanSize) != 0 {
				t.Fatalf("block %#x of %d bytes is not aligned", off, bs)
			}
			b := mustBytes(t, r, off, bs)
			if !isZero(b) {
				t.Fatalf("new block %#x is not zeroed", off)
			}
			for i := range b {
				b[i] = 0xA5
			}
			if err := r.Free(off); err != nil {
				t.Fatal(err)
			}
			off2, err := r.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			if off2 != off {
				t.Fatalf("freed block %#x not reused (got %#x)", off, off2)
			}
			if !isZero(mustBytes(t, r, off2, bs)) {
				t.Fatalf("reused block %#x is not zeroed", off2)
			}
			if err := r.Free(off2); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := r.Alloc(0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Alloc(0): %v, want ErrInvalid", err)
	}
	rep := mustCheck(t, r)
	wantAllFree(t, r, rep)
}

// wantAllFree fails unless every block the heap has handed out is free.
func wantAllFree(t testing.TB, r *Region, rep Report) {
	t.Helper()
	for c := 0; c < numClasses; c++ {
		if total := rep.ClassSpans[c] * (SpanSize / classSize(c)); rep.FreeBlocks[c]+rep.FreshBlocks[c] != total {
			t.Errorf("class %d: %d free and %d fresh of %d blocks", classSize(c), rep.FreeBlocks[c], rep.FreshBlocks[c], total)
		}
	}
	if rep.FreeRunSpans != rep.RunSpans {
		t.Errorf("%d of %d run spans free", rep.FreeRunSpans, rep.RunSpans)
	}
	if rep.Unpublished != 0 {
		t.Errorf("%d unpublished spans without a crash", rep.Unpublished)
	}
	st := r.Stats()
	if st.UsedBytes != 0 || st.FreeBytes != st.HeapSize {
		t.Errorf("Stats: heap %d, free %d, used %d; want all free", st.HeapSize, st.FreeBytes, st.UsedBytes)
	}
}

// workload allocates and frees blocks of random sizes, writing a pattern
// into each live block, and checks that no pattern ever changes: blocks
// never overlap and the allocator never writes into a live block.
type workload struct {
	t    testing.TB
	r    *Region
	rng  *rand.Rand
	live map[uint64]uint64 // offset → size requested
	runs bool
}

func newWorkload(t testing.TB, r *Region, seed uint64, runs bool) *workload {
	return &workload{t: t, r: r, rng: rand.New(rand.NewPCG(seed, seed)), live: map[uint64]uint64{}, runs: runs}
}

// randomSize picks a size, log-uniform over the classes, and now and then
// a run of up to four spans.
func randomSize(rng *rand.Rand, runs bool) uint64 {
	if runs && rng.IntN(20) == 0 {
		return MaxClassSize + 1 + rng.Uint64N(4*SpanSize-MaxClassSize)
	}
	shift := rng.IntN(maxClassShift + 1)
	return 1 + rng.Uint64N(1<<shift)
}

// fill writes the pattern of the block at off: its offset in every 8-byte word.
func fill(b []byte, off uint64) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], off^uint64(i))
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(off)
	}
}

func checkFill(b []byte, off uint64) bool {
	for i := 0; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != off^uint64(i) {
			return false
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		if b[i] != byte(off) {
			return false
		}
	}
	return true
}

func (w *workload) step() {
	t, r := w.t, w.r
	if len(w.live) > 0 && (len(w.live) >= 400 || w.rng.IntN(5) < 2) {
		for off := range w.live { // map order is random enough
			if !checkFill(mustBytes(t, r, off, w.live[off]), off) {
				t.Fatalf("live block %#x (%d bytes) was overwritten", off, w.live[off])
			}
			delete(w.live, off)
			if err := r.Free(off); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	size := randomSize(w.rng, w.runs)
	off, err := r.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	if _, dup := w.live[off]; dup {
		t.Fatalf("block %#x handed out twice", off)
	}
	b := mustBytes(t, r, off, size)
	if !isZero(b) {
		t.Fatalf("new block %#x of %d bytes is not zeroed", off, size)
	}
	fill(b, off)
	w.live[off] = size
}

func (w *workload) verify() {
	type iv struct{ lo, hi uint64 }
	var ivs []iv
	for off, size := range w.live {
		if !checkFill(mustBytes(w.t, w.r, off, size), off) {
			w.t.Fatalf("live block %#x (%d bytes) was overwritten", off, size)
		}
		ivs = append(ivs, iv{off, off + blockSize(w.t, w.r, off)})
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].lo < ivs[j].lo })
	for i := 1; i < len(ivs); i++ {
		if ivs[i].lo < ivs[i-1].hi {
			w.t.Fatalf("live blocks [%#x, %#x) and [%#x, %#x) overlap", ivs[i-1].lo, ivs[i-1].hi, ivs[i].lo, ivs[i].hi)
		}
	}
}

func (w *workload) freeAll() {
	for off := range w.live {
		if err := w.r.Free(off); err != nil {
			w.t.Fatal(err)
		}
		delete(w.live, off)
	}
}

func TestAllocNoOverlap(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: 1 << 30})
	w := newWorkload(t, r, 1, true)
	for i := 0; i < 20000; i++ {
		w.step()
		if i%2000 == 0 {
			w.verify()
		}
	}
	w.verify()
	// Check while blocks are live: free counts plus live blocks are everything.
	rep := mustCheck(t, r)
	var liveBlocks [numClasses]uint64
	var liveRunSpans uint64
	for off := range w.live {
		if bs := blockSize(t, r, off); bs > MaxClassSize {
			liveRunSpans += bs / SpanSize
		} else {
			liveBlocks[classOf(bs)]++
		}
	}
	for c := 0; c < numClasses; c++ {
		if total := rep.ClassSpans[c] * (SpanSize / classSize(c)); rep.FreeBlocks[c]+rep.FreshBlocks[c]+liveBlocks[c] != total {
			t.Errorf("class %d: %d free + %d fresh + %d live != %d blocks", classSize(c),
				rep.FreeBlocks[c], rep.FreshBlocks[c], liveBlocks[c], total)
		}
	}
	if rep.FreeRunSpans+liveRunSpans != rep.RunSpans {
		t.Errorf("runs: %d free + %d live spans != %d", rep.FreeRunSpans, liveRunSpans, rep.RunSpans)
	}
	w.freeAll()
	wantAllFree(t, r, mustCheck(t, r))
}

// TestAllocConcurrent runs workloads in goroutines of one process (run it
// with -race).
func TestAllocConcurrent(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: 1 << 30})
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorkload(t, r, uint64(g)+100, g%2 == 0)
			for i := 0; i < 4000 && !t.Failed(); i++ {
				w.step()
			}
			w.verify()
			w.freeAll()
		}()
	}
	wg.Wait()
	wantAllFree(t, r, mustCheck(t, r))
}

// TestAllocTwoAttachments allocates through one attachment and frees
// through another: the allocator's state lives in the region only.
func TestAllocTwoAttachments(t *testing.T) {
	r1, path := newRegion(t, Options{SizeLimit: 64 << 20})
	r2 := openRegion(t, path)
	var offs []uint64
	for i := 0; i < 3000; i++ {
		off, err := r1.Alloc(uint64(1 + i%3000))
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	for _, off := range offs {
		if err := r2.Free(off); err != nil {
			t.Fatal(err)
		}
	}
	wantAllFree(t, r1, mustCheck(t, r1))
}

func TestFreeInvalid(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: 64 << 20})
	heap := r.hdrCopy.heapOff
	small, err := r.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.Alloc(2 * SpanSize)
	if err != nil {
		t.Fatal(err)
	}
	top := heap + r.hdr.Brk.Load()*SpanSize
	before := r.Check()
	for _, off := range []uint64{
		0, 8, headerSize, r.hdrCopy.procOff + 64, r.hdrCopy.spanOff, heap - 8,
		small + 1, small + 8, small + 32, small + 63,
		run + 8, run + SpanSize, run + SpanSize + 64, run + 2*SpanSize - 8,
		top, top + SpanSize, r.Limit(), r.Limit() + SpanSize, 1 << 40, 1 << 62, ^uint64(0), ^uint64(0) - 7,
	} {
		if err := r.Free(off); !errors.Is(err, ErrInvalid) || !errors.Is(err, unix.EINVAL) {
			t.Errorf("Free(%#x): %v, want ErrInvalid", off, err)
		} else if want := fmt.Sprintf("%#x", off); !strings.Contains(err.Error(), want) {
			t.Errorf("Free(%#x): %q does not name the offset", off, err)
		}
	}
	after := mustCheck(t, r)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("refused frees changed the heap:\n%+v\n%+v", before, after)
	}
	if err := r.Free(small); err != nil {
		t.Fatal(err)
	}
	if err := r.Free(run); err != nil {
		t.Fatal(err)
	}
	wantAllFree(t, r, mustCheck(t, r))
}

// TestCheckFindsDoubleFree frees a block twice: Check must report it (Free
// itself does not detect double frees).
func TestCheckFindsDoubleFree(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: 64 << 20})
	a, _ := r.Alloc(64)
	b, _ := r.Alloc(64)
	if err := r.Free(a); err != nil {
		t.Fatal(err)
	}
	if err := r.Free(b); err != nil {
		t.Fatal(err)
	}
	if err := r.Free(a); err != nil { // a → b → a: a cycle
		t.Fatal(err)
	}
	if rep := r.Check(); len(rep.Problems) == 0 {
		t.Fatalf("Check found nothing wrong with a double free: %+v", rep)
	}
	// Freeing a block that was never handed out (past the carving cursor)
	// is caught too: it would be handed out twice.
	r3, _ := newRegion(t, Options{SizeLimit: 64 << 20})
	first, _ := r3.Alloc(64)
	if err := r3.Free(first + 128); err != nil {
		t.Fatal(err)
	}
	if rep := r3.Check(); len(rep.Problems) == 0 {
		t.Fatalf("Check missed a free block past the carving cursor: %+v", rep)
	}
	// A free-list entry pointing outside the heap is reported, not followed.
	r2, _ := newRegion(t, Options{SizeLimit: 64 << 20})
	c, _ := r2.Alloc(128)
	r2.Free(c)
	r2.link(c).Store(1 << 39)
	if rep := r2.Check(); len(rep.Problems) == 0 {
		t.Fatal("Check missed a free list pointing outside the heap")
	}
	if _, err := r2.Alloc(128); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Alloc from a broken free list: %v, want ErrCorrupt", err)
	}
}

func TestRegionFull(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: 1 << 20, CPUs: 2})
	spans := r.hdrCopy.maxSpans
	if spans == 0 || spans > 16 {
		t.Fatalf("a 1 MiB region has %d heap spans", spans)
	}
	_, err := r.Alloc(1 << 20)
	wantErr(t, err, ErrRegionFull, path)
	wantErr(t, err, unix.ENOMEM)

	var blocks []uint64
	for {
		off, err := r.Alloc(64)
		if err != nil {
			wantErr(t, err, ErrRegionFull, path)
			wantErr(t, err, unix.ENOMEM)
			break
		}
		blocks = append(blocks, off)
		if len(blocks) > 1<<20 {
			t.Fatal("a 1 MiB region never filled")
		}
	}
	if want := spans * (SpanSize / 64); uint64(len(blocks)) != want {
		t.Fatalf("%d blocks of 64 bytes fit, want %d", len(blocks), want)
	}
	if n := r.Counter(CounterFullErrors).Load(); n < 2 {
		t.Fatalf("region_full_errors = %d after two refusals", n)
	}
	for _, size := range []uint64{16, MaxClassSize, SpanSize} {
		_, err := r.Alloc(size)
		wantErr(t, err, ErrRegionFull, path)
	}
	if fi, err := os.Stat(path); err != nil || uint64(fi.Size()) > r.Limit() {
		t.Fatalf("region file is %v bytes, limit %d (%v)", fi.Size(), r.Limit(), err)
	}
	// Still usable: a freed block is handed out again.
	last := blocks[len(blocks)-1]
	if err := r.Free(last); err != nil {
		t.Fatal(err)
	}
	off, err := r.Alloc(64)
	if err != nil || off != last {
		t.Fatalf("Alloc after a free in a full region: %#x, %v; want %#x", off, err, last)
	}
	rep := mustCheck(t, r)
	if rep.Spans != spans || rep.ClassSpans[classOf(64)] != spans || rep.FreeBlocks[classOf(64)] != 0 {
		t.Fatalf("full region: %+v", rep)
	}
	for _, off := range blocks {
		if err := r.Free(off); err != nil {
			t.Fatal(err)
		}
	}
	wantAllFree(t, r, mustCheck(t, r))
	// Another process attaching to the full region works too.
	r2 := openRegion(t, path)
	if _, err := r2.Alloc(64); err != nil {
		t.Fatal(err)
	}
}

// TestFileSystemFull puts a region on a tmpfs smaller than the region's
// limit: growth fails with ErrRegionFull, never with SIGBUS.
func TestFileSystemFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("userbpf-test", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "region")
	r, err := Create(path, Options{SizeLimit: 64 << 20, CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var n int
	for {
		off, err := r.Alloc(4096)
		if err != nil {
			wantErr(t, err, ErrRegionFull, path)
			wantErr(t, err, unix.ENOMEM)
			break
		}
		// Touch the block: backed memory, no SIGBUS.
		fill(mustBytes(t, r, off, 4096), off)
		n++
		if n > 1<<16 {
			t.Fatal("a 2 MiB file system never filled")
		}
	}
	if n == 0 {
		t.Fatal("no block fitted at all")
	}
	mustCheck(t, r)
	// Another region that does not fit is refused cleanly too.
	_, err = Create(filepath.Join(dir, "second"), Options{SizeLimit: 64 << 20, CPUs: 1})
	wantErr(t, err, ErrRegionFull, filepath.Join(dir, "second"))
	if _, err := os.Stat(filepath.Join(dir, "second")); !os.IsNotExist(err) {
		t.Fatalf("a refused Create left a file behind: %v", err)
	}
}

// TestCarveRace makes a carve lose the race to install its span (to a
// reentrant carve from the crash hook, standing in for another process):
// the loser's span must become a free run, and both blocks must be good.
func TestCarveRace(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: 64 << 20})
	var inner uint64
	var spare bool
	crashHook = func(s crashSite) {
		switch {
		case s == siteCarveReserved && inner == 0:
			inner = 1 // no recursion beyond one level
			off, err := r.Alloc(100)
			if err != nil {
				t.Error(err)
			}
			inner = off
		case s == siteSpareDescribed:
			spare = true
		}
	}
	defer func() { crashHook = nil }()
	outer, err := r.Alloc(100)
	crashHook = nil
	if err != nil {
		t.Fatal(err)
	}
	if !spare {
		t.Fatal("the outer carve did not lose the race")
	}
	if blockSize(t, r, outer) != 128 || blockSize(t, r, inner) != 128 || outer != inner+128 {
		t.Fatalf("outer block %#x, inner %#x: want consecutive 128-byte blocks", outer, inner)
	}
	rep := mustCheck(t, r)
	if rep.RunSpans != 1 || rep.FreeRunSpans != 1 || rep.ClassSpans[classOf(128)] != 1 || rep.Unpublished != 0 {
		t.Fatalf("after a lost race: %+v", rep)
	}
	// The spare span serves the next one-span run.
	run, err := r.Alloc(SpanSize)
	if err != nil {
		t.Fatal(err)
	}
	// The outer carve reserved its span before the inner one did.
	if want := inner - SpanSize; run != want {
		t.Fatalf("one-span run at %#x, want the spare span %#x", run, want)
	}
	r.Free(run)
	r.Free(inner)
	r.Free(outer)
	wantAllFree(t, r, mustCheck(t, r))
}

// TestCorruptBrk: a heap size scribbled into the header by another process
// must not send this one outside its mapping.
func TestCorruptBrk(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: 64 << 20})
	off, err := r.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	brk := r.hdr.Brk.Load()
	r.hdr.Brk.Store(^uint64(0) >> 1)
	for _, o := range []uint64{r.Limit() - 8, r.Limit() + SpanSize, 1 << 50, 1 << 62} {
		if err := r.Free(o); err == nil {
			t.Errorf("Free(%#x) with a corrupt heap size succeeded", o)
		}
		if _, err := r.Bytes(o, 8); err == nil && o >= r.Limit() {
			t.Errorf("Bytes(%#x) with a corrupt heap size succeeded", o)
		}
	}
	r.Check()
	r.hdr.Brk.Store(brk)
	if err := r.Free(off); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r)
}
