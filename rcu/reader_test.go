package rcu

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbpf/userbpf/shm"
)

// TestNestedSections: Lock and Unlock nest on one Reader; only the
// outermost pair shows in the slot, and a grace period waits for the
// outermost Unlock.
func TestNestedSections(t *testing.T) {
	r, d := newRegion(t)
	ctl := newCtl(t, r)
	marker := word(r, ctl, ctlMarker)
	rd, err := d.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	rd.Lock()
	outer := rd.slot.Epoch.Load()
	if outer == 0 {
		t.Fatal("slot shows no reader inside a section")
	}
	rd.Lock()
	if got := rd.slot.Epoch.Load(); got != outer {
		t.Errorf("inner Lock changed the slot from %d to %d", outer, got)
	}

	done := make(chan bool)
	go func() {
		d.Synchronize()
		done <- marker.Load() == 1
	}()
	waitEpochPast(d.w, outer)

	rd.Unlock() // inner: still inside the outer section
	if got := rd.slot.Epoch.Load(); got != outer {
		t.Errorf("inner Unlock changed the slot from %d to %d", outer, got)
	}
	time.Sleep(10 * time.Millisecond) // widen the window a Synchronize that stopped waiting would fall into
	marker.Store(1)
	rd.Unlock()
	if !<-done {
		t.Error("Synchronize returned after the inner Unlock, before the outer one")
	}
	if got := rd.slot.Epoch.Load(); got != 0 {
		t.Errorf("slot shows epoch %d after the outermost Unlock", got)
	}

	// Nesting again after a full exit starts at the current epoch.
	rd.Lock()
	rd.Lock()
	if got, now := rd.slot.Epoch.Load(), d.w.Epoch.Load(); got != now {
		t.Errorf("re-entered section shows epoch %d, want the current %d", got, now)
	}
	rd.Unlock()
	rd.Unlock()
	if got := rd.slot.Epoch.Load(); got != 0 {
		t.Errorf("slot shows epoch %d after the outermost Unlock", got)
	}
}

// TestReadPooled: Read runs fn inside a section on a slot of this process,
// leaves it afterwards, and a grace period started during fn waits for it.
func TestReadPooled(t *testing.T) {
	r, d := newRegion(t)
	ctl := newCtl(t, r)
	marker := word(r, ctl, ctlMarker)
	tag := r.Tag()

	inSection := func() int { // slots of this process inside a section
		n := 0
		for i := range d.w.Slots[:d.w.ReaderHigh.Load()] {
			if s := &d.w.Slots[i]; s.Owner.Load() == tag && s.Epoch.Load() != 0 {
				n++
			}
		}
		return n
	}

	done := make(chan bool)
	err := d.Read(func() {
		if n := inSection(); n != 1 {
			t.Errorf("inside Read: %d slots of this process in a section, want 1", n)
		}
		e := d.w.Epoch.Load()
		go func() {
			d.Synchronize()
			done <- marker.Load() == 1
		}()
		waitEpochPast(d.w, e)
		time.Sleep(10 * time.Millisecond) // widen the window
		marker.Store(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Error("Synchronize returned while Read's fn was running")
	}
	if n := inSection(); n != 0 {
		t.Errorf("after Read: %d slots of this process still in a section", n)
	}

	// Nested Reads, and many in a row, do not leave sections open.
	for range 1000 {
		err := d.Read(func() {
			if err := d.Read(func() {}); err != nil {
				t.Error(err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := inSection(); n != 0 {
		t.Errorf("after 1000 nested Reads: %d slots of this process still in a section", n)
	}
	if n := len(d.pooled); n != 2 {
		t.Errorf("%d pooled readers after Reads nested two deep, want 2", n)
	}
	d.Synchronize()
}

// TestNewReaderExhaustion: claiming reader slots until none is left fails
// with an error matching shm.ErrRegionFull; closing a Reader frees its slot
// for the next claim.
func TestNewReaderExhaustion(t *testing.T) {
	_, d := newRegion(t)
	var rds []*Reader
	defer func() {
		for _, rd := range rds {
			rd.Close()
		}
	}()
	for {
		rd, err := d.NewReader()
		if err != nil {
			if !errors.Is(err, shm.ErrRegionFull) {
				t.Errorf("error %v does not match shm.ErrRegionFull", err)
			}
			break
		}
		rds = append(rds, rd)
		if len(rds) > shm.MaxReaders {
			t.Fatalf("claimed %d reader slots, there are only %d", len(rds), shm.MaxReaders)
		}
	}
	if len(rds) != shm.MaxReaders {
		t.Errorf("claimed %d reader slots before running out, want %d", len(rds), shm.MaxReaders)
	}
	if err := d.Read(func() {}); err == nil {
		t.Error("Read succeeded with no reader slot left")
	}
	d.Synchronize() // all slots are claimed, none in a section

	victim := rds[1234]
	rds[1234] = rds[len(rds)-1]
	rds = rds[:len(rds)-1]
	idx := victim.idx
	victim.Close()
	victim.Close() // a second Close does nothing
	rd, err := d.NewReader()
	if err != nil {
		t.Fatalf("NewReader after a Close: %v", err)
	}
	rds = append(rds, rd)
	if rd.idx != idx {
		t.Errorf("new reader took slot %d, want the freed slot %d", rd.idx, idx)
	}
}

// TestReadConcurrent: goroutines running Reads (nested, too) at once never
// share a pooled Reader, even while the garbage collector empties the pool;
// the pooled readers hold no more slots than Reads ever ran at once.
func TestReadConcurrent(t *testing.T) {
	_, d := newRegion(t)
	const goroutines, reads = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range reads {
				err := d.Read(func() {
					if i%2 == 0 {
						if err := d.Read(func() {}); err != nil {
							t.Error(err)
						}
					}
				})
				if err != nil {
					t.Error(err)
					return
				}
				if g == 0 && i%200 == 0 {
					runtime.GC() // drops what the pool holds
					d.Synchronize()
				}
			}
		})
	}
	wg.Wait()
	d.pooledMu.Lock()
	defer d.pooledMu.Unlock()
	if n := len(d.pooled); n > 2*goroutines {
		t.Errorf("%d pooled readers for at most %d Reads at once", n, 2*goroutines)
	}
	for _, rd := range d.pooled {
		if rd.busy.Load() || rd.depth != 0 || rd.slot.Epoch.Load() != 0 {
			t.Errorf("pooled reader in slot %d left busy=%v depth=%d epoch=%d",
				rd.idx, rd.busy.Load(), rd.depth, rd.slot.Epoch.Load())
		}
	}
}

// TestReaderCloseAfterRegionClose: closing a Reader (or running Reads, which
// fail) after its region was closed must not touch the unmapped region.
func TestReaderCloseAfterRegionClose(t *testing.T) {
	r, err := shm.Create(t.TempDir()+"/rcu.region", shm.Options{SizeLimit: 64 << 20, CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := New(r)
	rd, err := d.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Read(func() {}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rd.Close() // used to write into the unmapped slot: SIGSEGV
	if err := d.Close(); err != nil {
		t.Errorf("domain Close after region Close: %v", err)
	}
}

// TestReadPinned: ReadPinned runs fn inside a section of this process
// (nested calls too) and leaves it afterwards; goroutines calling it at once
// never share a Reader in a way that leaves a section open. In race builds
// it is Read, so the detector checks the exclusivity there.
func TestReadPinned(t *testing.T) {
	r, d := newRegion(t)
	tag := r.Tag()
	inSection := func() int {
		n := 0
		for i := range d.w.Slots[:d.w.ReaderHigh.Load()] {
			if s := &d.w.Slots[i]; s.Owner.Load() == tag && s.Epoch.Load() != 0 {
				n++
			}
		}
		return n
	}
	// fn only looks: it must not block, and t.Error may.
	var inside, nested int
	err := d.ReadPinned(func() {
		inside = inSection()
		if err := d.ReadPinned(func() { nested = inSection() }); err != nil {
			nested = -1
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != 1 || nested < 1 {
		t.Errorf("inside ReadPinned %d slots of this process in a section, nested %d; want 1 and at least 1", inside, nested)
	}
	if n := inSection(); n != 0 {
		t.Errorf("after ReadPinned: %d slots of this process still in a section", n)
	}

	const goroutines, reads = 8, 5000
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			for i := range reads {
				err := d.ReadPinned(func() {
					if i%3 == 0 {
						if d.ReadPinned(func() {}) != nil {
							failed.Add(1)
						}
					}
				})
				if err != nil {
					failed.Add(1)
				}
				if g == 0 && i%500 == 0 {
					d.Synchronize() // waits for the others' sections: it must not hang
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d ReadPinned calls failed", n)
	}
	if n := inSection(); n != 0 {
		t.Errorf("after concurrent ReadPinned: %d slots of this process still in a section", n)
	}
	d.pooledMu.Lock()
	defer d.pooledMu.Unlock()
	for _, rd := range d.pooled {
		if rd.depth != 0 {
			t.Errorf("reader in slot %d left at depth %d", rd.idx, rd.depth)
		}
	}
}
