package programs_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/programs"
	"github.com/userbpf/userbpf/ringbuf"
	"github.com/userbpf/userbpf/shm"
)

// attach opens the region, prints "ready" and waits for the parent's go.
func attach(path string) (*userbpf.Region, error) {
	r, err := userbpf.OpenRegion(path)
	if err != nil {
		return nil, err
	}
	fmt.Println("ready")
	if !bufio.NewScanner(os.Stdin).Scan() {
		r.Close()
		return nil, fmt.Errorf("no go")
	}
	return r, nil
}

// abort-worker: rounds × (run inc, WithLock value++, run emit until the
// ring takes the record). A worker never faults.
var _ = proctest.Register("abort-worker", func(args []string) error {
	rounds, _ := strconv.Atoi(args[1])
	r, err := attach(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	inc, err := r.Program("inc")
	if err != nil {
		return err
	}
	emit, err := r.Program("emit")
	if err != nil {
		return err
	}
	locked, err := r.OpenMap("locked", 0)
	if err != nil {
		return err
	}
	ctx := skb(1)()
	key := []byte{0, 0, 0, 0}
	for i := range rounds {
		if _, err := inc.Run(ctx); err != nil {
			return err
		}
		err := locked.WithLock(key, func(v []byte) error {
			binary.NativeEndian.PutUint64(v[offValue:], binary.NativeEndian.Uint64(v[offValue:])+1)
			return nil
		})
		if err != nil {
			return err
		}
		// The ring is full until the parent consumes: a record reserved by
		// an aborted run and never discarded would stop it for good.
		deadline := time.Now().Add(time.Minute)
		for {
			full, err := emit.Run(ctx)
			if err != nil {
				return err
			}
			if full == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("round %d: the ring stayed full for a minute", i)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return nil
})

// abort-faulter: rounds × every kind of fault (the budget ones every
// budgetEvery rounds: they take a million instructions each), each run
// checked to abort as it should.
var _ = proctest.Register("abort-faulter", func(args []string) error {
	rounds, _ := strconv.Atoi(args[1])
	installPanicHelper()
	r, err := attach(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	return runFaults(r, rounds)
})

const budgetEvery = 8

func runFaults(r *userbpf.Region, rounds int) error {
	ps := make([]*programs.Program, len(faults))
	for i, f := range faults {
		p, err := r.Program(f.prog)
		if err != nil {
			return err
		}
		ps[i] = p
	}
	for round := range rounds {
		for i, f := range faults {
			if f.kind == programs.FaultBudget && round%budgetEvery != 0 {
				continue
			}
			_, err := ps[i].Run(f.ctx())
			if err := checkAbort(ps[i], f, err); err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
		}
	}
	return nil
}

// expectedFaults is how many times runFaults(rounds) runs a program.
func expectedFaults(f fault, rounds int) uint64 {
	if f.kind == programs.FaultBudget {
		return uint64((rounds + budgetEvery - 1) / budgetEvery)
	}
	return uint64(rounds)
}

// abort-spinner: prints its owner tag, then runs spin_locked (a million
// instructions with the lock held, then the budget ends it) until killed.
var _ = proctest.Register("abort-spinner", func(args []string) error {
	r, err := userbpf.OpenRegion(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Program("spin_locked")
	if err != nil {
		return err
	}
	fmt.Println(r.Shared().Tag())
	ctx := skb(0)()
	for {
		if _, err := p.Run(ctx); !errors.Is(err, programs.ErrAborted) {
			return fmt.Errorf("spin_locked: %v", err)
		}
	}
})

// Programs abort at every kind of fault in several processes while other
// processes keep incrementing the same locked counter through a program
// and through WithLock, and produce ring-buffer records the parent
// consumes; one process is SIGKILLed while its program holds the lock in
// the middle of a run. Afterwards: the lock is free, the totals and the
// region's fault counters are exact, every record arrived and the ring is
// empty, no region block leaked, every virtual CPU is free and a grace
// period completes.
func TestAbortWhileOthersShareTheMaps(t *testing.T) {
	installPanicHelper()
	defer programs.SetTestHelpers(nil)
	path, r := newAbortRegion(t, 3)
	locked, err := r.OpenMap("locked", 0)
	if err != nil {
		t.Fatal(err)
	}
	events, err := r.OpenMap("events", 0)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := runFaults(r, 1); err != nil { // warm up: every path once
		t.Fatal(err)
	}
	before := r.Shared().Check()
	base := map[string]programs.Stats{}
	for _, f := range faults {
		p, _ := r.Program(f.prog)
		base[f.prog] = p.Stats()
	}
	baseAborts := counterField(t, locked, offAborts)

	const workers, faulters, rounds, faultRounds = 2, 2, 1500, 40
	var kids []*proctest.Child
	var gos []func()
	start := func(name string, args ...string) *proctest.Child {
		cmd := proctest.Command(name, args...)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		k := proctest.StartCmd(t, name, cmd)
		k.Expect(t, "ready")
		gos = append(gos, func() { fmt.Fprintln(in, "go") })
		return k
	}
	for range workers {
		kids = append(kids, start("abort-worker", path, strconv.Itoa(rounds)))
	}
	for range faulters {
		kids = append(kids, start("abort-faulter", path, strconv.Itoa(faultRounds)))
	}

	// Consume the ring as the workers fill it.
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		n := 0
		for n < workers*rounds {
			rec, err := rd.Read(ctx)
			if err != nil {
				got <- result{n, err}
				return
			}
			if len(rec.RawSample) != 16 || binary.NativeEndian.Uint64(rec.RawSample[8:]) != 0xabcd {
				got <- result{n, fmt.Errorf("record %d is %x: not one emit submitted", n, rec.RawSample)}
				return
			}
			n++
		}
		got <- result{n, nil}
	}()
	for _, g := range gos {
		g()
	}

	// Meanwhile: kill a process while its program holds the lock. It is
	// stopped first, so that it still holds the lock when the kill lands.
	word := lockWord(t, locked)
	killed, attempts := false, 0
	for ; attempts < 20 && !killed; attempts++ {
		sp := proctest.Start(t, "abort-spinner", path)
		tag, err := strconv.ParseUint(sp.Line(t), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(time.Minute); word.Owner() != uint32(tag); {
			if time.Now().After(deadline) {
				t.Fatalf("the spinner (tag %#x) never held the lock", tag)
			}
			time.Sleep(20 * time.Microsecond)
		}
		sp.Cmd.Process.Signal(syscall.SIGSTOP)
		killed = word.Owner() == uint32(tag)
		sp.Kill(t)
	}
	if !killed {
		t.Fatal("could not stop the spinner while it held the lock")
	}

	// This process aborts programs too, meanwhile.
	if err := runFaults(r, faultRounds); err != nil {
		t.Fatal(err)
	}
	for _, k := range kids {
		k.Wait(t)
	}
	if res := <-got; res.err != nil || res.n != workers*rounds {
		t.Fatalf("read %d records: %v", res.n, res.err)
	}

	// The ring: a record emitted now is the next one read, and then the
	// ring is empty (no reserved or discarded record is left behind).
	emit, err := r.Program("emit")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := emit.Run(skb(0xfeed)()); v != 0 || err != nil {
		t.Fatalf("emit: %d, %v", v, err)
	}
	last, cancelLast := context.WithTimeout(ctx, time.Minute) // a bound against a hang
	defer cancelLast()
	rec, err := rd.Read(last)
	if err != nil || binary.NativeEndian.Uint64(rec.RawSample) != 0xfeed {
		t.Fatalf("last record %x, %v", rec.RawSample, err)
	}
	if n := rd.Ring().Query(ringbuf.AvailData); n != 0 {
		t.Errorf("%d bytes left in the ring", n)
	}

	// The lock: free, and the dead owner's lock was recovered.
	if o := word.Owner(); o != 0 {
		t.Errorf("lock held by %#x", o)
	}
	if n := r.Shared().Counter(shm.CounterSpinRecoveries).Load(); n != 1 {
		t.Errorf("%d spin-lock recoveries, want 1 (the killed spinner's)", n)
	}

	// Totals: every increment of the workers, and every abort counted.
	if got, want := counterField(t, locked, offValue), uint64(2*workers*rounds); got != want {
		t.Errorf("value %d, want %d", got, want)
	}
	inc, _ := r.Program("inc")
	if st := inc.Stats(); st.Faults != 0 || st.Runs != uint64(workers*rounds) {
		t.Errorf("inc: %+v", st)
	}
	var counted uint64
	for _, f := range faults {
		p, _ := r.Program(f.prog)
		st, b := p.Stats(), base[f.prog]
		want := uint64(faulters+1) * expectedFaults(f, faultRounds)
		n := st.Faults - b.Faults
		if f.prog == "spin_locked" {
			if n < want { // plus the spinners' completed runs
				t.Errorf("%s: %d faults, want at least %d", f.prog, n, want)
			}
		} else if n != want {
			t.Errorf("%s: %d faults, want %d", f.prog, n, want)
		}
		if st.Runs-b.Runs != n || st.LastFault != f.kind || st.Disabled {
			t.Errorf("%s: stats %+v (before %+v)", f.prog, st, b)
		}
		if f.prog != "fell_off" {
			counted += n
		}
	}
	t.Logf("%d records, %d aborts in %d kinds, %d kill attempts, spin_locked %+v", workers*rounds, counted, len(faults), attempts, func() programs.Stats { p, _ := r.Program("spin_locked"); return p.Stats() }())
	// A killed spinner's run may have counted itself in the map and not
	// yet in the region (it usually takes one attempt).
	if got := counterField(t, locked, offAborts) - baseAborts; got < counted || got > counted+uint64(attempts) {
		t.Errorf("aborts counted by the programs %d, by the region %d (+ up to %d killed runs)", got, counted, attempts)
	}

	// The region: the killed process's CPU and reader slot are taken back,
	// a grace period completes, no block leaked.
	r.Shared().ReapDead()
	if n := r.Shared().LeasedCPUs(); n != 0 {
		t.Errorf("%d virtual CPUs leased", n)
	}
	r.Synchronize()
	after := r.Shared().Check()
	if len(after.Problems) > 0 || after.FreeBytes() != before.FreeBytes() || after.Spans != before.Spans {
		t.Errorf("region before %+v\nafter %+v", before, after)
	}
}
