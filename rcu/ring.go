package rcu

import (
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/shm"
)

// A retire ring holds one process's blocks waiting for a grace period. It
// lives in a region block so that a survivor can free the blocks if the
// process dies; only its owner writes it while the owner lives.
//
//	0   Head u64       entries before Head are freed (monotonic)
//	8   Tail u64       entries before Tail are written (monotonic)
//	16  Entries [ringCap] { Off u64; Epoch u64 }
//
// An entry is written before Tail moves past it; Head moves past an entry
// before its block is freed, so a crash leaks at most one block and never
// frees one twice.
const (
	ringCap   = 1023
	ringBytes = 16 + ringCap*16
)

type ringHeader struct {
	Head atomic.Uint64
	Tail atomic.Uint64
}

type ringEntry struct {
	Off   atomic.Uint64
	Epoch atomic.Uint64
}

type ring struct {
	off uint64
	hdr *ringHeader
	e   []ringEntry
}

func openRing(r *shm.Region, off uint64) *ring {
	p := r.Pointer(off)
	return &ring{off: off, hdr: (*ringHeader)(p), e: unsafe.Slice((*ringEntry)(unsafe.Add(p, 16)), ringCap)}
}

func (g *ring) len() uint64 { return g.hdr.Tail.Load() - g.hdr.Head.Load() }

func (g *ring) push(off, epoch uint64) {
	t := g.hdr.Tail.Load()
	e := &g.e[t%ringCap]
	e.Off.Store(off)
	e.Epoch.Store(epoch)
	g.hdr.Tail.Store(t + 1)
}

// drain frees entries retired before epoch completed, oldest first, and
// returns how many it freed.
func (g *ring) drain(r *shm.Region, completed uint64) int {
	n := 0
	for h := g.hdr.Head.Load(); h < g.hdr.Tail.Load(); h++ {
		e := &g.e[h%ringCap]
		if e.Epoch.Load() >= completed {
			break
		}
		off := e.Off.Load()
		g.hdr.Head.Store(h + 1)
		r.Free(off)
		n++
	}
	return n
}
