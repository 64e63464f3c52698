package ringbuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/maps"
)

// Records of every size, many times around the ring: each comes back
// intact and in order, including those that wrap past the end of the data
// area (the double mapping keeps them contiguous).
func TestOutputReadWraps(t *testing.T) {
	r, _ := newRegion(t)
	m, g := newRing(t, r, "rb", maps.RingBuf, 4096)
	rd := newReader(t, m)
	var buf [256]byte
	wrapped := 0
	for seq := uint32(0); seq < 2000; seq++ {
		rec := makeRecord(buf[:], 1, seq)
		pos := g.Query(ProdPos)
		noErr(t, "output", g.Output(rec, 0))
		if pos&4095+recordSize(uint64(len(rec))) > 4096 {
			wrapped++
		}
		got := readN(t, rd, 1)[0]
		if p, s, ok := checkRecord(got); !ok || p != 1 || s != seq {
			t.Fatalf("record %d: got producer %d seq %d ok %v", seq, p, s, ok)
		}
	}
	if wrapped == 0 {
		t.Fatal("no record wrapped around the end of the ring")
	}
	if a := g.Query(AvailData); a != 0 {
		t.Errorf("AvailData = %d after reading everything", a)
	}
}

// Zero-length records exist (an 8-byte header) and are delivered.
func TestZeroLengthRecord(t *testing.T) {
	r, _ := newRegion(t)
	m, g := newRing(t, r, "rb", maps.RingBuf, 4096)
	rd := newReader(t, m)
	rec, err := g.Reserve(0)
	noErr(t, "reserve 0", err)
	noErr(t, "submit", g.Submit(rec, 0))
	if g.Query(ProdPos) != 8 {
		t.Errorf("ProdPos = %d, want 8", g.Query(ProdPos))
	}
	if got := readN(t, rd, 1)[0]; len(got) != 0 {
		t.Errorf("got %d bytes", len(got))
	}
}

// The kernel's size rules: round_up(size + 8, 8) larger than the ring is
// E2BIG; a record exactly the ring's size passes that check but can never
// fit a RINGBUF (the producer may run at most size - 1 bytes ahead), while a
// USER_RINGBUF may fill all of it.
func TestRecordTooBig(t *testing.T) {
	r, _ := newRegion(t)
	_, g := newRing(t, r, "rb", maps.RingBuf, 4096)
	for _, size := range []int{4089, 5000, MaxRecordSize + 1, 1 << 40} {
		_, err := g.Reserve(size)
		wantErr(t, "reserve too big", err, ErrTooBig, syscall.E2BIG)
		wantErr(t, "output too big", g.Output(make([]byte, min(size, 8192)), 0), ErrTooBig, syscall.E2BIG)
	}
	_, err := g.Reserve(-1)
	wantErr(t, "reserve -1", err, ErrInvalid, syscall.EINVAL)
	_, err = g.Reserve(4088)
	wantErr(t, "reserve the whole ringbuf", err, ErrFull, syscall.ENOSPC)
	rec, err := g.Reserve(4080)
	noErr(t, "reserve size-8", err)
	noErr(t, "submit", g.Submit(rec, 0))

	_, u := newRing(t, r, "urb", maps.UserRingBuf, 4096)
	rec, err = u.Reserve(4088)
	noErr(t, "reserve the whole user ringbuf", err)
	noErr(t, "submit", u.Submit(rec, 0))
	_, err = u.Reserve(0)
	wantErr(t, "reserve in a full user ringbuf", err, ErrFull, syscall.ENOSPC)
}

// A full ring refuses records (ENOSPC from Reserve, EAGAIN from Output),
// counts them as drops, and overwrites nothing: everything written before
// comes back intact.
func TestFullDropsNothingOverwritten(t *testing.T) {
	r, _ := newRegion(t)
	m, g := newRing(t, r, "rb", maps.RingBuf, 4096)
	var buf [256]byte
	n := uint32(0)
	for ; ; n++ {
		err := g.Output(makeRecord(buf[:], 7, n), 0)
		if err != nil {
			wantErr(t, "output to a full ring", err, ErrFull, syscall.EAGAIN)
			break
		}
	}
	if n < 20 {
		t.Fatalf("only %d records fit", n)
	}
	before := g.Stats().Drops
	for range 5 {
		_, err := g.Reserve(100)
		wantErr(t, "reserve in a full ring", err, ErrFull, syscall.ENOSPC)
	}
	if d := g.Stats().Drops - before; d != 5 {
		t.Errorf("drops grew by %d, want 5", d)
	}
	rd := newReader(t, m)
	for i, got := range readN(t, rd, int(n)) {
		if p, s, ok := checkRecord(got); !ok || p != 7 || s != uint32(i) {
			t.Fatalf("record %d: producer %d seq %d ok %v", i, p, s, ok)
		}
	}
	// Room again.
	noErr(t, "output after draining", g.Output(makeRecord(buf[:], 7, n), 0))
}

// A BUSY record holds back the records after it (they are delivered in
// reservation order), and fills the ring for later reservations once the
// producer position would run size - 1 past it (the pending position).
func TestBusyRecordHoldsBackLaterOnes(t *testing.T) {
	r, _ := newRegion(t)
	m, g := newRing(t, r, "rb", maps.RingBuf, 4096)
	rd := newReader(t, m)
	first, err := g.Reserve(16)
	noErr(t, "reserve", err)
	copy(first, "first")
	noErr(t, "output", g.Output([]byte("second"), 0))
	var rec Record
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rd.ReadInto(ctx, &rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("read behind a BUSY record: %v (%q)", err, rec.RawSample)
	}
	noErr(t, "submit", g.Submit(first, 0))
	got := readN(t, rd, 2)
	if !bytes.HasPrefix(got[0], []byte("first")) || string(got[1]) != "second" {
		t.Errorf("got %q", got)
	}
}

// Discarded records are skipped by the reader.
func TestDiscard(t *testing.T) {
	r, _ := newRegion(t)
	m, g := newRing(t, r, "rb", maps.RingBuf, 8192)
	rd := newReader(t, m)
	for i := range 10 {
		rec, err := g.Reserve(8)
		noErr(t, "reserve", err)
		rec[0] = byte(i)
		if i%3 == 0 {
			noErr(t, "discard", g.Discard(rec, 0))
		} else {
			noErr(t, "submit", g.Submit(rec, 0))
		}
	}
	for _, got := range readN(t, rd, 6) {
		if got[0]%3 == 0 {
			t.Errorf("discarded record %d delivered", got[0])
		}
	}
}

// Submit and Discard take only a pending reservation of this ring.
func TestCommitErrors(t *testing.T) {
	r, _ := newRegion(t)
	_, g := newRing(t, r, "rb", maps.RingBuf, 4096)
	_, other := newRing(t, r, "rb2", maps.RingBuf, 4096)
	rec, err := g.Reserve(24)
	noErr(t, "reserve", err)
	wantErr(t, "submit to another ring", other.Submit(rec, 0), ErrInvalid, syscall.EINVAL)
	wantErr(t, "submit a Go slice", g.Submit(make([]byte, 24), 0), ErrInvalid, syscall.EINVAL)
	wantErr(t, "submit nil", g.Submit(nil, 0), ErrInvalid, syscall.EINVAL)
	wantErr(t, "submit a misaligned slice", g.Submit(rec[1:], 0), ErrInvalid, syscall.EINVAL)
	noErr(t, "submit", g.Submit(rec, 0))
	wantErr(t, "second submit", g.Submit(rec, 0), ErrInvalid, syscall.EINVAL)
	wantErr(t, "discard after submit", g.Discard(rec, 0), ErrInvalid, syscall.EINVAL)
	wantErr(t, "output flags", g.Output([]byte{1}, 4), ErrInvalid, syscall.EINVAL)
}

// Query reports the kernel's BPF_RB_* values.
func TestQuery(t *testing.T) {
	r, _ := newRegion(t)
	m, g := newRing(t, r, "rb", maps.RingBuf, 16384)
	noErr(t, "output", g.Output(make([]byte, 20), 0))
	noErr(t, "output", g.Output(make([]byte, 3), 0))
	want := map[uint64]uint64{AvailData: 32 + 16, RingSize: 16384, ConsPos: 0, ProdPos: 48, 99: 0}
	for f, w := range want {
		if got := g.Query(f); got != w {
			t.Errorf("Query(%d) = %d, want %d", f, got, w)
		}
	}
	rd := newReader(t, m)
	readN(t, rd, 2)
	if g.Query(ConsPos) != 48 || g.Query(AvailData) != 0 {
		t.Errorf("after reading both: cons %d avail %d", g.Query(ConsPos), g.Query(AvailData))
	}
}

// One consumer at a time: a second Reader (here in the same process) is
// EBUSY until the first closes. Readers are for RINGBUF only, drains for
// USER_RINGBUF only.
func TestOneConsumer(t *testing.T) {
	r, _ := newRegion(t)
	m, _ := newRing(t, r, "rb", maps.RingBuf, 4096)
	rd, err := NewReader(m)
	noErr(t, "first reader", err)
	_, err = NewReader(m)
	wantErr(t, "second reader", err, ErrBusy, syscall.EBUSY)
	noErr(t, "close", rd.Close())
	rd2 := newReader(t, m)
	_ = rd2

	um, u := newRing(t, r, "urb", maps.UserRingBuf, 4096)
	_, err = NewReader(um)
	wantErr(t, "reader on a user ringbuf", err, ErrInvalid, syscall.EINVAL)
	g, err := Open(m)
	noErr(t, "open", err)
	defer g.Close()
	_, err = g.Drain(func([]byte) bool { return false }, 0)
	wantErr(t, "drain a ringbuf", err, ErrInvalid, syscall.EINVAL)
	_, err = u.Drain(func([]byte) bool { return false }, 4)
	wantErr(t, "drain flags", err, ErrInvalid, syscall.EINVAL)
}

// Reading through a read-only handle, or from a frozen map, is EPERM (the
// kernel refuses the writable mapping of the consumer page); producing into
// a frozen user ringbuf too.
func TestPermissions(t *testing.T) {
	r, _ := newRegion(t)
	m, _ := newRing(t, r, "rb", maps.RingBuf, 4096)
	ro, err := r.OpenMap("rb", maps.FlagRdOnly)
	noErr(t, "open read-only", err)
	_, err = NewReader(ro)
	wantErr(t, "reader on a read-only handle", err, ErrPermission, syscall.EPERM)
	noErr(t, "freeze", m.Freeze())
	_, err = NewReader(m)
	wantErr(t, "reader on a frozen ringbuf", err, ErrPermission, syscall.EPERM)

	um, _ := newRing(t, r, "urb", maps.UserRingBuf, 4096)
	noErr(t, "freeze", um.Freeze())
	u, err := Open(um)
	noErr(t, "open frozen", err)
	defer u.Close()
	_, err = u.Reserve(8)
	wantErr(t, "reserve in a frozen user ringbuf", err, ErrPermission, syscall.EPERM)
	if u.Query(RingSize) != 4096 {
		t.Errorf("query on a frozen ring")
	}
}

// USER_RINGBUF drains as bpf_user_ringbuf_drain: in order, discarded
// samples skipped and not counted, stop when the callback says so, EBUSY
// for a drain inside a drain.
func TestDrain(t *testing.T) {
	r, _ := newRegion(t)
	_, u := newRing(t, r, "urb", maps.UserRingBuf, 4096)
	for i := range 10 {
		rec, err := u.Reserve(i + 1)
		noErr(t, "reserve", err)
		rec[0] = byte(i)
		if i == 4 {
			noErr(t, "discard", u.Discard(rec, 0))
			continue
		}
		noErr(t, "submit", u.Submit(rec, 0))
	}
	var seen []byte
	n, err := u.Drain(func(s []byte) bool {
		seen = append(seen, s[0])
		_, err := u.Drain(func([]byte) bool { return false }, 0)
		wantErr(t, "drain in a drain", err, ErrBusy, syscall.EBUSY)
		return s[0] == 6
	}, 0)
	noErr(t, "drain", err)
	if n != 6 || string(seen) != "\x00\x01\x02\x03\x05\x06" {
		t.Errorf("drained %d: %v", n, seen)
	}
	n, err = u.Drain(func(s []byte) bool { seen = append(seen, s[0]); return false }, ForceWakeup)
	noErr(t, "drain", err)
	if n != 3 || len(seen) != 9 || seen[8] != 9 {
		t.Errorf("drained %d: %v", n, seen)
	}
	n, err = u.Drain(func([]byte) bool { return false }, 0)
	if n != 0 || err != nil {
		t.Errorf("drain empty: %d, %v", n, err)
	}
}

// Garbage in the shared positions or a record header gives ErrCorrupt (or
// the kernel's errno for a drain), never a crash.
func TestCorruptRing(t *testing.T) {
	r, _ := newRegion(t)
	m, g := newRing(t, r, "rb", maps.RingBuf, 4096)
	rd := newReader(t, m)
	mem, _ := m.RingMemory(false)
	noErr(t, "output", g.Output(make([]byte, 16), 0))

	hdr := (*uint32)(mem.Data())
	*hdr = 4000 // a length past the producer position
	var rec Record
	err := rd.ReadInto(context.Background(), &rec)
	wantErr(t, "read a record longer than the data", err, ErrCorrupt, syscall.EUCLEAN)

	*hdr = 16
	// A reader keeps its own position; a new one checks the shared one.
	noErr(t, "close", rd.Close())
	for _, bad := range []uint64{1 << 40, 3} {
		mem.Consumer().ConsPos.Store(bad)
		_, err = NewReader(m)
		wantErr(t, fmt.Sprintf("reader with consumer position %d", bad), err, ErrCorrupt, syscall.EUCLEAN)
	}
	mem.Consumer().ConsPos.Store(0)
	rd = newReader(t, m)

	// A garbage pending position is rebuilt from the consumer position.
	mem.Producer().PendPos = 1<<50 + 3
	noErr(t, "output after a bad pending position", g.Output(make([]byte, 8), 0))
	readN(t, rd, 2)
	// A garbage producer position is refused.
	mem.Producer().ProdPos.Store(1<<50 + 5)
	_, err = g.Reserve(8)
	wantErr(t, "reserve with a bad producer position", err, ErrCorrupt, syscall.EUCLEAN)
	err = rd.ReadInto(context.Background(), &rec)
	wantErr(t, "read with a bad producer position", err, ErrCorrupt, syscall.EUCLEAN)

	_, u := newRing(t, r, "urb", maps.UserRingBuf, 4096)
	umem, _ := u.Map().RingMemory(false)
	rec2, err := u.Reserve(8)
	noErr(t, "reserve", err)
	noErr(t, "submit", u.Submit(rec2, 0))
	*(*uint32)(umem.Data()) = 1 << 29
	_, err = u.Drain(func([]byte) bool { return false }, 0)
	wantErr(t, "drain a sample past the producer", err, ErrInvalid, syscall.EINVAL)
	umem.Producer().ProdPos.Store(12)
	_, err = u.Drain(func([]byte) bool { return false }, 0)
	wantErr(t, "drain with a misaligned producer", err, ErrInvalid, syscall.EINVAL)
}
