package maps_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/futex/futextest"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

// watcher attaches, watches map "w" with values and prints each event as
// "KIND KEYHEX VALUEHEX" until it has printed the number it was given.
var _ = proctest.Register("watcher", func(args []string) error {
	r, err := userbpf.OpenRegion(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := r.OpenMap("w", maps.FlagRdOnly)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(args[1])
	w, err := m.Watch(maps.WatchOptions{Values: true})
	if err != nil {
		return err
	}
	fmt.Println("watching")
	for range n {
		ev, err := w.Next(context.Background())
		if err != nil {
			return err
		}
		fmt.Println(eventLine(ev))
	}
	return nil
})

func eventLine(ev maps.Event) string {
	if ev.Kind == maps.EventOverflow {
		return fmt.Sprintf("overflow %d", ev.Lost)
	}
	return fmt.Sprintf("%s %s %s", ev.Kind, hex.EncodeToString(ev.Key), hex.EncodeToString(ev.Value))
}

// Two watcher processes sleep on the log's futex (checked: they are
// blocked in FUTEX_WAIT, not polling) and both receive every update and
// delete this process makes, in order, with values.
func TestWatchAcrossProcesses(t *testing.T) {
	r, path := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "w", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 64})
	const events = 40
	var kids []*proctest.Child
	for range 2 {
		c := proctest.Start(t, "watcher", path, strconv.Itoa(events))
		c.Expect(t, "watching")
		futextest.Await(t, c.Cmd.Process.Pid, 0, 1)
		kids = append(kids, c)
	}
	var want []string
	k, v := make([]byte, 4), make([]byte, 8)
	for i := 0; len(want) < events; i++ {
		binary.NativeEndian.PutUint32(k, uint32(i%8))
		if i%5 == 4 {
			if m.Delete(k) == nil {
				want = append(want, fmt.Sprintf("delete %s ", hex.EncodeToString(k)))
			}
			continue
		}
		binary.NativeEndian.PutUint64(v, uint64(i))
		if err := m.Update(k, v, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("update %s %s", hex.EncodeToString(k), hex.EncodeToString(v)))
	}
	for _, c := range kids {
		for i, w := range want {
			if got := c.Line(t); got != w {
				t.Fatalf("event %d: watcher got %q, want %q", i, got, w)
			}
		}
		c.Wait(t)
	}
}

// A watcher that does not keep up never holds a writer back: it gets one
// overflow event saying how many it lost, then the newest events in order.
func TestWatchOverflow(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "w", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	w, err := m.Watch(maps.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, v := make([]byte, 4), make([]byte, 8)
	total := 3*maps.DefaultWatchEvents + 10
	for i := 0; i < total; i++ {
		binary.NativeEndian.PutUint64(v, uint64(i))
		if err := m.Update(k, v, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	ev, err := w.Next(ctx)
	if err != nil || ev.Kind != maps.EventOverflow || ev.Lost != uint64(total-maps.DefaultWatchEvents) {
		t.Fatalf("first event %+v (%v), want overflow of %d", ev, err, total-maps.DefaultWatchEvents)
	}
	for i := 0; i < maps.DefaultWatchEvents; i++ {
		ev, err := w.Next(ctx)
		if err != nil || ev.Kind != maps.EventUpdate || ev.Value != nil || ev.Seq != uint64(total-maps.DefaultWatchEvents+i) {
			t.Fatalf("event %d: %+v (%v)", i, ev, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := w.Next(cctx); err != context.DeadlineExceeded {
		t.Fatalf("Next with nothing new: %v, want the context's error", err)
	}
}

// In-place changes and evictions are events too.
func TestWatchLockedUpdatesAndEvictions(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "w", Type: maps.LRUHash, KeySize: 4, ValueSize: 16, MaxEntries: 8, HasLock: true})
	w, err := m.Watch(maps.WatchOptions{Values: true})
	if err != nil {
		t.Fatal(err)
	}
	k, v := make([]byte, 4), make([]byte, 16)
	if err := m.Update(k, v, maps.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if err := m.WithLock(k, func(val []byte) error { val[8] = 42; return nil }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ev, _ := w.Next(ctx); ev.Kind != maps.EventUpdate {
		t.Fatalf("first event %+v", ev)
	}
	if ev, _ := w.Next(ctx); ev.Kind != maps.EventUpdate || len(ev.Value) != 16 || ev.Value[8] != 42 {
		t.Fatalf("WithLock event %+v", ev)
	}
	for i := 1; i < 40; i++ {
		binary.NativeEndian.PutUint32(k, uint32(i))
		if err := m.Update(k, v, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	evicted := 0
	for range 39 + 40 {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		ev, err := w.Next(cctx)
		cancel()
		if err != nil {
			break
		}
		if ev.Kind == maps.EventEvict {
			evicted++
		}
	}
	if evicted == 0 {
		t.Error("inserting 40 keys into an 8-entry LRU map produced no evict event")
	}
}
