package ringbuf

// Tests with real processes: producers in several processes at once, a
// consumer in another that sleeps and is woken, consumers and producers
// killed with SIGKILL at the worst moments, and the wake-up flags.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

// printSleeps makes this (child) process print "sleeping" each time its
// reader is about to wait on the futex.
func printSleeps() { testHookSleep = func() { fmt.Println("sleeping") } }

// produce outputs count records of producer id, retrying while the ring is
// full (the drops are counted, nothing is lost).
func produce(g *Ring, id, from, count uint32) error {
	var buf [256]byte
	for seq := from; seq < from+count; seq++ {
		rec := makeRecord(buf[:], id, seq)
		for {
			err := g.Output(rec, 0)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrFull) {
				return err
			}
			runtime.Gosched()
		}
	}
	return nil
}

var _ = proctest.Register("rb-producer", func(args []string) error {
	r, m, err := openChild(args[0], args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	g, err := Open(m)
	if err != nil {
		return err
	}
	defer g.Close()
	id, _ := strconv.Atoi(args[2])
	count, _ := strconv.Atoi(args[3])
	proctest.Ready("ready")
	awaitLine()
	return produce(g, uint32(id), 0, uint32(count))
})

// rb-consumer reads args[2] records, checks each one's checksum and that
// every producer's records come in order, and prints "ok N".
var _ = proctest.Register("rb-consumer", func(args []string) error {
	r, m, err := openChild(args[0], args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	total, _ := strconv.Atoi(args[2])
	rd, err := NewReader(m)
	if err != nil {
		return err
	}
	defer rd.Close()
	var once sync.Once
	testHookSleep = func() { once.Do(func() { fmt.Println("sleeping") }) }
	next := map[uint32]uint32{}
	var rec Record
	for i := range total {
		if err := rd.ReadInto(context.Background(), &rec); err != nil {
			return err
		}
		p, s, ok := checkRecord(rec.RawSample)
		if !ok {
			return fmt.Errorf("record %d is corrupt: % x", i, rec.RawSample)
		}
		if s != next[p] {
			return fmt.Errorf("record %d: producer %d seq %d, want seq %d", i, p, s, next[p])
		}
		next[p]++
	}
	fmt.Println("ok", total)
	return nil
})

// Three producer processes write at once into one ring read by a consumer
// process that was asleep when they started: every record arrives exactly
// once, intact, in each producer's order, and the consumer was woken by
// a futex wake (not by polling).
func TestManyProducerProcesses(t *testing.T) {
	const producers, each = 3, 20000
	r, path := newRegion(t)
	_, g := newRing(t, r, "events", maps.RingBuf, 1<<14)
	cons := startChild(t, "rb-consumer", path, "events", strconv.Itoa(producers*each))
	cons.Expect(t, "sleeping")
	ps := make([]*child, producers)
	for i := range ps {
		ps[i] = startChild(t, "rb-producer", path, "events", strconv.Itoa(i+1), strconv.Itoa(each))
		ps[i].Expect(t, "ready")
	}
	for _, p := range ps {
		p.tell(t, "go")
	}
	for _, p := range ps {
		p.Wait(t)
	}
	cons.Expect(t, fmt.Sprintf("ok %d", producers*each))
	cons.Wait(t)
	st := g.Stats()
	if st.Wakeups == 0 {
		t.Errorf("the sleeping consumer was never woken by a producer: %+v", st)
	}
	if st.ConsPos != st.ProdPos || st.Recovered != 0 || st.Consumer != 0 {
		t.Errorf("after the run: %+v", st)
	}
	t.Logf("stats: %+v", st)
}

// rb-read-then-sleep reads args[2] records, says so, and reads on: it is
// killed while asleep in Read.
var _ = proctest.Register("rb-read-then-sleep", func(args []string) error {
	r, m, err := openChild(args[0], args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	n, _ := strconv.Atoi(args[2])
	rd, err := NewReader(m)
	if err != nil {
		return err
	}
	printSleeps()
	var rec Record
	for i := 0; ; i++ {
		if i == n {
			fmt.Println("read", n)
		}
		if err := rd.ReadInto(context.Background(), &rec); err != nil {
			return err
		}
	}
})

// A consumer killed while asleep in Read blocks no producer (they fill the
// ring and then drop), and a new consumer takes its place and continues
// exactly where it stopped.
func TestConsumerKilledAsleep(t *testing.T) {
	r, path := newRegion(t)
	m, g := newRing(t, r, "events", maps.RingBuf, 1<<13)
	noErr(t, "first records", produce(g, 1, 0, 10))
	c := startChild(t, "rb-read-then-sleep", path, "events", "10")
	c.Expect(t, "read 10")
	c.Expect(t, "sleeping")
	_, err := NewReader(m)
	wantErr(t, "reader while the consumer lives", err, ErrBusy, syscall.EBUSY)
	c.Kill(t)

	var buf [256]byte
	seq := uint32(10)
	for ; ; seq++ {
		if err := g.Output(makeRecord(buf[:], 1, seq), 0); err != nil {
			wantErr(t, "output with a dead consumer", err, ErrFull, syscall.EAGAIN)
			break
		}
	}
	rd := newReader(t, m)
	if st := g.Stats(); st.Takeovers != 1 || st.Sleepers != 0 {
		t.Errorf("after taking over: %+v", st)
	}
	for i, got := range readN(t, rd, int(seq-10)) {
		if p, s, ok := checkRecord(got); !ok || p != 1 || s != uint32(10+i) {
			t.Fatalf("record %d: producer %d seq %d ok %v", i, p, s, ok)
		}
	}
}

// rb-stream-reader reads records and stores the number of the next one it
// expects in slot 0 of array "progress" after each.
var _ = proctest.Register("rb-stream-reader", func(args []string) error {
	r, m, err := openChild(args[0], args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	prog, err := r.OpenMap("progress", 0)
	if err != nil {
		return err
	}
	p, err := prog.ValuePointer(0)
	if err != nil {
		return err
	}
	progress := (*atomic.Uint64)(p)
	rd, err := NewReader(m)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	var rec Record
	for {
		if err := rd.ReadInto(context.Background(), &rec); err != nil {
			return err
		}
		_, s, ok := checkRecord(rec.RawSample)
		if !ok || uint64(s) != progress.Load() {
			return fmt.Errorf("record %d (ok %v) after %d", s, ok, progress.Load())
		}
		progress.Store(uint64(s) + 1)
	}
})

// A consumer killed in the middle of a stream of records: the producer
// (another process) keeps going, and a new consumer continues from where
// the dead one stopped: no record is lost (the new consumer starts at or
// before the record after the last one the dead consumer had read), and
// the records are contiguous to the end. The new consumer may see again
// what the dead one had read but not yet published (at most size/8 bytes).
func TestConsumerKilledMidStream(t *testing.T) {
	const total = 20000
	r, path := newRegion(t)
	m, g := newRing(t, r, "events", maps.RingBuf, 1<<13)
	prog, err := r.CreateMap(maps.Spec{Name: "progress", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	noErr(t, "progress array", err)
	pp, err := prog.ValuePointer(0)
	noErr(t, "progress pointer", err)
	progress := (*atomic.Uint64)(pp)
	c := startChild(t, "rb-stream-reader", path, "events")
	c.Expect(t, "ready")
	p := startChild(t, "rb-producer", path, "events", "1", strconv.Itoa(total))
	p.Expect(t, "ready")
	p.tell(t, "go")
	waitFor(t, "the consumer to read 500 records", func() bool { return progress.Load() >= 500 })
	c.Kill(t)
	dead := progress.Load() // the next record the dead consumer would have read
	rd := newReader(t, m)
	var rec Record
	first := -1
	for want := 0; ; want++ {
		noErr(t, "read", rd.ReadInto(context.Background(), &rec))
		_, s, ok := checkRecord(rec.RawSample)
		if !ok {
			t.Fatalf("corrupt record after the takeover")
		}
		if first < 0 {
			first, want = int(s), int(s)
			// dead is what the consumer had recorded; it may have been
			// killed after Read returned one more record and before it
			// recorded it: that record was delivered, to it.
			if uint64(first) > dead+1 {
				t.Fatalf("records lost: the first after the takeover is %d, the dead consumer had read up to %d", first, dead)
			}
			var buf [256]byte
			again := uint64(0) // bytes the dead consumer had read but not published
			for seq := uint32(first); uint64(seq) <= dead; seq++ {
				again += recordSize(uint64(len(makeRecord(buf[:], 1, seq))))
			}
			if again >= 1<<13/8+recordSize(uint64(len(buf))) {
				t.Errorf("%d records (%d bytes) delivered twice, more than size/8 bytes and a record", dead-uint64(first), again)
			}
		} else if int(s) != want {
			t.Fatalf("record %d after %d", s, want-1)
		}
		if int(s) == total-1 {
			break
		}
	}
	p.Wait(t)
	if st := g.Stats(); st.Takeovers != 1 || st.ConsPos != st.ProdPos {
		t.Errorf("after the run: %+v", st)
	}
	t.Logf("the dead consumer had read %d records, the new one started at %d", dead, first)
}

// rb-reserve-hold outputs one record, reserves a second and never submits
// it.
var _ = proctest.Register("rb-reserve-hold", func(args []string) error {
	r, m, err := openChild(args[0], args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	g, err := Open(m)
	if err != nil {
		return err
	}
	if err := g.Output([]byte("before"), 0); err != nil {
		return err
	}
	rec, err := g.Reserve(32)
	if err != nil {
		return err
	}
	copy(rec, "never submitted")
	fmt.Println("reserved")
	awaitLine()
	return g.Submit(rec, 0)
})

// A producer killed between Reserve and Submit: its BUSY record holds back
// the records after it while it lives, and once it is dead the sleeping
// consumer discards it and delivers the rest, and later records still
// arrive.
func TestProducerKilledBetweenReserveAndSubmit(t *testing.T) {
	r, path := newRegion(t)
	m, g := newRing(t, r, "events", maps.RingBuf, 1<<13)
	rd := newReader(t, m)
	c := startChild(t, "rb-reserve-hold", path, "events")
	c.Expect(t, "reserved")
	noErr(t, "records after the busy one", produce(g, 2, 0, 5))
	if got := readN(t, rd, 1)[0]; string(got) != "before" {
		t.Fatalf("first record %q", got)
	}
	var rec Record
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rd.ReadInto(ctx, &rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("read past a live producer's BUSY record: %v %q", err, rec.RawSample)
	}
	done := make(chan []([]byte))
	go func() { done <- readN(t, rd, 5) }() // sleeps behind the BUSY record
	c.Kill(t)
	for i, got := range <-done {
		if p, s, ok := checkRecord(got); !ok || p != 2 || s != uint32(i) {
			t.Fatalf("record %d: producer %d seq %d ok %v", i, p, s, ok)
		}
	}
	if st := g.Stats(); st.Recovered != 1 {
		t.Errorf("recovered %d BUSY records, want 1", st.Recovered)
	}
	noErr(t, "later record", g.Output([]byte("after"), 0))
	if got := readN(t, rd, 1)[0]; string(got) != "after" {
		t.Fatalf("later record %q", got)
	}
}

// The same with a USER_RINGBUF: a drain discards the dead producer's BUSY
// sample and hands out the rest.
func TestUserRingProducerKilled(t *testing.T) {
	r, path := newRegion(t)
	_, u := newRing(t, r, "events", maps.UserRingBuf, 1<<13)
	c := startChild(t, "rb-reserve-hold", path, "events")
	c.Expect(t, "reserved")
	noErr(t, "samples after the busy one", u.Output([]byte("x"), 0))
	var got []string
	collect := func(s []byte) bool { got = append(got, string(s)); return false }
	n, err := u.Drain(collect, 0)
	if n != 1 || err != nil || got[0] != "before" {
		t.Fatalf("drain while the producer lives: %d %v %q", n, err, got)
	}
	c.Kill(t)
	// Drains ask about a BUSY sample's owner at most once per probe
	// interval: drain until the dead one's sample is gone.
	waitFor(t, "a drain past the dead producer's sample", func() bool {
		n, err = u.Drain(collect, 0)
		noErr(t, "drain", err)
		return n > 0
	})
	if n != 1 || strings.Join(got, ",") != "before,x" {
		t.Fatalf("drain after the producer died: %d %q", n, got)
	}
	if st := u.Stats(); st.Recovered != 1 {
		t.Errorf("recovered %d", st.Recovered)
	}
}

// rb-hold-lock takes the producers' spin lock and never lets go.
var _ = proctest.Register("rb-hold-lock", func(args []string) error {
	r, m, err := openChild(args[0], args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	mem, err := m.RingMemory(false)
	if err != nil {
		return err
	}
	mem.Producer().Lock.Lock(r.Shared().Holder())
	fmt.Println("locked")
	awaitLine()
	return nil
})

// A producer killed inside Reserve, holding the producers' lock: the next
// producer takes the lock over and the ring works on.
func TestProducerKilledHoldingLock(t *testing.T) {
	r, path := newRegion(t)
	m, g := newRing(t, r, "events", maps.RingBuf, 1<<13)
	rd := newReader(t, m)
	c := startChild(t, "rb-hold-lock", path, "events")
	c.Expect(t, "locked")
	c.Kill(t)
	noErr(t, "output after the lock holder died", g.Output([]byte("after"), 0))
	if got := readN(t, rd, 1)[0]; string(got) != "after" {
		t.Fatalf("got %q", got)
	}
	if n := r.Stats().Counters["spin_lock_recoveries"]; n != 1 {
		t.Errorf("spin lock recoveries %d", n)
	}
}

// Cancelling the context of a Read that sleeps returns context.Canceled;
// Close interrupts a sleeping Read with ErrClosed.
func TestReadCancelAndClose(t *testing.T) {
	r, _ := newRegion(t)
	m, _ := newRing(t, r, "events", maps.RingBuf, 1<<13)
	rd, err := NewReader(m)
	noErr(t, "reader", err)
	asleep := make(chan struct{}, 16)
	testHookSleep = func() { asleep <- struct{}{} }
	defer func() { testHookSleep = nil }()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := rd.Read(ctx); errc <- err }()
	<-asleep
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v", err)
	}
	go func() { _, err := rd.Read(context.Background()); errc <- err }()
	<-asleep
	noErr(t, "close", rd.Close())
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if st := rd.Ring().Stats(); st.Sleepers != 0 || st.Consumer != 0 {
		t.Errorf("after close: %+v", st)
	}
}

// rb-print-reader prints each record it reads, and "sleeping" before each
// wait.
var _ = proctest.Register("rb-print-reader", func(args []string) error {
	r, m, err := openChild(args[0], args[1])
	if err != nil {
		return err
	}
	defer r.Close()
	rd, err := NewReader(m)
	if err != nil {
		return err
	}
	printSleeps()
	var rec Record
	for {
		if err := rd.ReadInto(context.Background(), &rec); err != nil {
			return err
		}
		fmt.Println(string(rec.RawSample))
	}
})

// The kernel's wake-up rules, seen from a consumer asleep in another
// process: NO_WAKEUP never wakes it, the adaptive default wakes it only for
// the record it waits for (the one at its position), FORCE_WAKEUP always
// does and wins over NO_WAKEUP. Futex wakes are counted, so each step is
// checked exactly, without timing.
func TestWakeupFlags(t *testing.T) {
	r, path := newRegion(t)
	_, g := newRing(t, r, "events", maps.RingBuf, 1<<13)
	c := startChild(t, "rb-print-reader", path, "events")
	c.Expect(t, "sleeping")
	wakeups := func() uint64 { return g.Stats().Wakeups }
	step := func(what string, want uint64, fn func()) {
		t.Helper()
		before := wakeups()
		fn()
		if got := wakeups() - before; got != want {
			t.Fatalf("%s: %d futex wakes, want %d", what, got, want)
		}
	}
	step("NO_WAKEUP", 0, func() { noErr(t, "output", g.Output([]byte("a"), NoWakeup)) })
	step("adaptive, not the awaited record", 0, func() { noErr(t, "output", g.Output([]byte("b"), 0)) })
	step("FORCE_WAKEUP", 1, func() { noErr(t, "output", g.Output([]byte("c"), ForceWakeup)) })
	for _, w := range []string{"a", "b", "c", "sleeping"} {
		c.Expect(t, w)
	}
	var first []byte
	step("reserve", 0, func() {
		var err error
		first, err = g.Reserve(1)
		noErr(t, "reserve", err)
		first[0] = 'd'
	})
	step("adaptive, behind a BUSY record", 0, func() { noErr(t, "output", g.Output([]byte("e"), 0)) })
	step("adaptive, the awaited record", 1, func() { noErr(t, "submit", g.Submit(first, 0)) })
	for _, w := range []string{"d", "e", "sleeping"} {
		c.Expect(t, w)
	}
	step("FORCE_WAKEUP|NO_WAKEUP", 1, func() { noErr(t, "output", g.Output([]byte("f"), NoWakeup|ForceWakeup)) })
	c.Expect(t, "f")
	c.Expect(t, "sleeping")
	step("adaptive, empty ring", 1, func() { noErr(t, "output", g.Output([]byte("g"), 0)) })
	c.Expect(t, "g")
	c.Expect(t, "sleeping")
	// Nobody asleep: no futex call at all, even forced.
	c.Kill(t)
	rd := newReader(t, g.Map())
	readN(t, rd, 0)
	step("FORCE_WAKEUP, nobody asleep", 0, func() { noErr(t, "output", g.Output([]byte("h"), ForceWakeup)) })

}
