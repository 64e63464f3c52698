package ringbuf

import (
	"context"
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/userbpf/userbpf/maps"
)

// FuzzCorruptRing writes arbitrary words into a ring's shared state (the
// positions, the producers' bookkeeping, record headers), as a process
// that does not follow the protocol could, then produces, reads and
// drains: every call must return (an error is fine), never crash or hang.
func FuzzCorruptRing(f *testing.F) {
	f.Add([]byte{0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0x10})
	f.Add([]byte{1, 0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, 0x10, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, patch []byte) {
		r, _ := newRegion(t)
		m, g := newRing(t, r, "rb", maps.RingBuf, 4096)
		um, u := newRing(t, r, "urb", maps.UserRingBuf, 4096)
		for i := range 5 {
			g.Output(make([]byte, 8*i), 0)
			u.Output(make([]byte, 8*i), 0)
		}
		rec, _ := g.Reserve(16) // one BUSY record, owned by a live process
		_ = rec
		// Each 12-byte chunk: which ring, the word's width, a 16-bit offset, a
		// 64-bit word.
		for len(patch) >= 12 {
			mem, _ := m.RingMemory(false)
			if patch[0]&1 == 1 {
				mem, _ = um.RingMemory(false)
			}
			off := uint64(binary.LittleEndian.Uint16(patch[2:])) % (maps.RingDataOff + 4096 - 8) &^ 7
			v := binary.LittleEndian.Uint64(patch[4:])
			if patch[1]&1 == 1 {
				v = uint64(uint32(v)) // a 32-bit field: keep the neighbour
				v |= *(*uint64)(unsafe.Add(mem.Region.Pointer(mem.Off), off)) &^ 0xffffffff
			}
			*(*uint64)(unsafe.Add(mem.Region.Pointer(mem.Off), off)) = v
			patch = patch[12:]
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // never sleep: return what is there, or an error
		if rd, err := NewReader(m); err == nil {
			var rec Record
			for range 20 {
				if rd.ReadInto(ctx, &rec) != nil {
					break
				}
			}
			rd.Close()
		}
		for range 5 {
			if rec, err := g.Reserve(24); err == nil {
				g.Submit(rec, ForceWakeup)
			}
			u.Output(make([]byte, 40), 0)
		}
		u.Drain(func([]byte) bool { return false }, 0)
		g.Query(AvailData)
		g.Stats()
	})
}
