package maps_test

// QUEUE and STACK: the kernel's test_queuemap / test_stackmap, every
// command's errno, and several processes pushing and popping one queue.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

func u32v(x uint32) []byte { return binary.NativeEndian.AppendUint32(nil, x) }

// testQueueStack is test_queuemap / test_stackmap: push max_entries
// values, E2BIG on the next, peek, BPF_EXIST pushes that drop the oldest,
// pops in FIFO / LIFO order, then ENOENT.
func testQueueStack(t *testing.T, typ maps.Type) {
	const max = 32
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "qs", Type: typ, ValueSize: 4, MaxEntries: max})
	vals := make([]uint32, max+max/2)
	for i := range vals {
		vals[i] = uint32(i*7919 + 1)
	}
	for i := range max {
		noErr(t, fmt.Sprintf("push %d", i), m.Push(u32v(vals[i]), maps.UpdateAny))
	}
	wantErr(t, "push into a full map", m.Push(u32v(1), maps.UpdateAny), maps.ErrFull, syscall.E2BIG)
	got := make([]byte, 4)
	noErr(t, "peek", m.Peek(got))
	want := vals[0] // the oldest
	if typ == maps.Stack {
		want = vals[max-1] // the newest
	}
	if g := binary.NativeEndian.Uint32(got); g != want {
		t.Fatalf("peek = %d, want %d", g, want)
	}
	// BPF_EXIST on a full map drops the oldest element, for both types.
	for i := max; i < len(vals); i++ {
		noErr(t, fmt.Sprintf("overwriting push %d", i), m.Push(u32v(vals[i]), maps.UpdateExist))
	}
	left := vals[max/2:] // the max/2 oldest were dropped
	for i := range max {
		want := left[i]
		if typ == maps.Stack {
			want = left[len(left)-1-i]
		}
		noErr(t, fmt.Sprintf("pop %d", i), m.Pop(got))
		if g := binary.NativeEndian.Uint32(got); g != want {
			t.Fatalf("pop %d = %d, want %d", i, g, want)
		}
	}
	copy(got, u32v(0xfeedface))
	wantErr(t, "pop from an empty map", m.Pop(got), maps.ErrKeyNotExist, syscall.ENOENT)
	wantErr(t, "peek into an empty map", m.Peek(got), maps.ErrKeyNotExist, syscall.ENOENT)
	if binary.NativeEndian.Uint32(got) != 0xfeedface {
		t.Errorf("a failed pop or peek wrote %x into the buffer (bpf(2) copies nothing out on ENOENT)", got)
	}
	wantErr(t, "delete", m.Delete(nil), maps.ErrInvalid, syscall.EINVAL)
	wantErr(t, "get next key", m.NextKey(nil, nil), maps.ErrInvalid, syscall.EINVAL)
}

func TestQueueMap(t *testing.T) { testQueueStack(t, maps.Queue) }
func TestStackMap(t *testing.T) { testQueueStack(t, maps.Stack) }

func TestQueueStackErrors(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.Queue, maps.Stack} {
		base := maps.Spec{Name: "e" + typ.String(), Type: typ, ValueSize: 8, MaxEntries: 4}
		creates := []struct {
			what string
			edit func(s *maps.Spec)
			want error
			no   syscall.Errno
		}{
			{"key_size 4", func(s *maps.Spec) { s.KeySize = 4 }, maps.ErrInvalid, syscall.EINVAL},
			{"value_size 0", func(s *maps.Spec) { s.ValueSize = 0 }, maps.ErrInvalid, syscall.EINVAL},
			{"max_entries 0", func(s *maps.Spec) { s.MaxEntries = 0 }, maps.ErrInvalid, syscall.EINVAL},
			{"BPF_F_NO_PREALLOC", func(s *maps.Spec) { s.Flags = maps.FlagNoPrealloc }, maps.ErrInvalid, syscall.EINVAL},
			{"BPF_F_ZERO_SEED", func(s *maps.Spec) { s.Flags = maps.FlagZeroSeed }, maps.ErrInvalid, syscall.EINVAL},
			{"map_extra", func(s *maps.Spec) { s.MapExtra = 1 }, maps.ErrInvalid, syscall.EINVAL},
			{"value above KMALLOC_MAX_SIZE", func(s *maps.Spec) { s.ValueSize = 4<<20 + 1 }, maps.ErrFull, syscall.E2BIG},
			{"a bpf_spin_lock", func(s *maps.Spec) { s.HasLock = true }, maps.ErrOpNotSupported, syscall.EOPNOTSUPP},
		}
		for _, c := range creates {
			s := base
			c.edit(&s)
			_, err := r.CreateMap(s)
			wantErr(t, fmt.Sprintf("create %s with %s", typ, c.what), err, c.want, c.no)
		}
		m := createMap(t, r, base)
		v := make([]byte, 8)
		for _, f := range []uint64{maps.UpdateNoExist, 3, maps.FlagLock, maps.FlagLock | maps.UpdateExist, 1 << 32} {
			wantErr(t, fmt.Sprintf("%s push flags %#x", typ, f), m.Push(v, f), maps.ErrInvalid, syscall.EINVAL)
		}
		wantErr(t, typ.String()+" push with a key", m.Update(make([]byte, 0), v, 0), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, typ.String()+" push with a short value", m.Push(v[:4], 0), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, typ.String()+" peek with a key", m.Lookup([]byte{}, v, 0), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, typ.String()+" peek with BPF_F_LOCK", m.Lookup(nil, v, maps.FlagLock), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, typ.String()+" pop with BPF_F_LOCK", m.LookupAndDelete(nil, v, maps.FlagLock), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, typ.String()+" pop with BPF_EXIST", m.LookupAndDelete(nil, v, maps.UpdateExist), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, typ.String()+" delete with a key", m.Delete([]byte{1}), maps.ErrInvalid, syscall.EINVAL)
		wantErr(t, typ.String()+" get next key with a key", m.NextKey([]byte{1}, nil), maps.ErrInvalid, syscall.EINVAL)
		if _, err := m.Contents(); err != nil {
			t.Errorf("%s contents: %v", typ, err)
		}

		// Batches: none (ENOTSUPP), after the permission check.
		_, err := m.LookupBatch(nil, nil, nil, nil, 0, 0)
		wantErr(t, typ.String()+" lookup batch", err, maps.ErrNotSupported, syscall.Errno(524))
		_, err = m.LookupAndDeleteBatch(nil, nil, nil, nil, 0, 0)
		wantErr(t, typ.String()+" lookup and delete batch", err, maps.ErrNotSupported, syscall.Errno(524))
		_, err = m.UpdateBatch(nil, v, 0, 0)
		wantErr(t, typ.String()+" update batch", err, maps.ErrNotSupported, syscall.Errno(524))
		_, err = m.DeleteBatch(nil, 0)
		wantErr(t, typ.String()+" delete batch", err, maps.ErrNotSupported, syscall.Errno(524))

		// test_map_wronly_stack_or_queue, and a read-only handle.
		wo, err := r.OpenMap(base.Name, maps.FlagWrOnly)
		noErr(t, "open write-only", err)
		noErr(t, "push through a write-only handle", wo.Push(v, 0))
		wantErr(t, "peek through a write-only handle", wo.Peek(v), maps.ErrPermission, syscall.EPERM)
		wantErr(t, "pop through a write-only handle", wo.Pop(v), maps.ErrPermission, syscall.EPERM)
		_, err = wo.Contents()
		wantErr(t, "contents through a write-only handle", err, maps.ErrPermission, syscall.EPERM)
		_, err = wo.LookupBatch(nil, nil, nil, nil, 0, 0)
		wantErr(t, "lookup batch through a write-only handle", err, maps.ErrPermission, syscall.EPERM)
		ro, err := r.OpenMap(base.Name, maps.FlagRdOnly)
		noErr(t, "open read-only", err)
		noErr(t, "peek through a read-only handle", ro.Peek(v))
		wantErr(t, "push through a read-only handle", ro.Push(v, 0), maps.ErrPermission, syscall.EPERM)
		wantErr(t, "pop through a read-only handle", ro.Pop(v), maps.ErrPermission, syscall.EPERM)
		_, err = ro.UpdateBatch(nil, v, 0, 0)
		wantErr(t, "update batch through a read-only handle", err, maps.ErrPermission, syscall.EPERM)

		// Frozen: pushes and pops are EPERM, peeks still work.
		noErr(t, "freeze", m.Freeze())
		wantErr(t, "push into a frozen map", m.Push(v, 0), maps.ErrPermission, syscall.EPERM)
		wantErr(t, "pop from a frozen map", m.Pop(v), maps.ErrPermission, syscall.EPERM)
		noErr(t, "peek into a frozen map", m.Peek(v))
	}
}

// TestQueueWraps pushes and pops around the ring many times, checking
// Contents against a model at each step.
func TestQueueWraps(t *testing.T) {
	r, _ := newRegion(t)
	for _, typ := range []maps.Type{maps.Queue, maps.Stack} {
		const max = 5
		m := createMap(t, r, maps.Spec{Name: "w" + typ.String(), Type: typ, ValueSize: 3, MaxEntries: max})
		var model [][]byte // in pop order
		next := byte(0)
		got := make([]byte, 3)
		for step := range 400 {
			switch op := (step * 7) % 10; {
			case op < 6: // push, overwriting when full half of the time
				v := []byte{next, next + 1, next + 2}
				next++
				flags := uint64(maps.UpdateAny)
				if step%2 == 0 {
					flags = maps.UpdateExist
				}
				err := m.Push(v, flags)
				full := len(model) == max
				switch {
				case full && flags == maps.UpdateAny:
					wantErr(t, "push into a full map", err, maps.ErrFull, syscall.E2BIG)
					continue
				case err != nil:
					t.Fatalf("step %d: push: %v", step, err)
				}
				if full { // the oldest goes
					if typ == maps.Queue {
						model = model[1:]
					} else {
						model = model[:len(model)-1]
					}
				}
				if typ == maps.Queue {
					model = append(model, v)
				} else {
					model = append([][]byte{v}, model...)
				}
			default:
				err := m.Pop(got)
				if len(model) == 0 {
					wantErr(t, "pop from an empty map", err, maps.ErrKeyNotExist, syscall.ENOENT)
					continue
				}
				if err != nil || string(got) != string(model[0]) {
					t.Fatalf("step %d: pop = %x, %v; want %x", step, got, err, model[0])
				}
				model = model[1:]
			}
			c, err := m.Contents()
			if err != nil || fmt.Sprint(c) != fmt.Sprint(model) {
				t.Fatalf("%s step %d: contents %x, %v; want %x", typ, step, c, err, model)
			}
		}
	}
}

// A queue's values in the multi-process test: producer id, sequence
// number j, and the torn-value pattern over both.
const qpValueSize = patternSize

// qpWorker: path name id count out — push count values (id, 0..count-1),
// popping one after each push (and whenever the queue is full), and write
// every value it popped, in order, to file out.
var _ = proctest.Register("queue-worker", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	id, _ := strconv.ParseUint(args[2], 10, 32)
	count, _ := strconv.Atoi(args[3])
	proctest.Ready("ready")
	awaitLine()
	var popped []byte
	v, got := make([]byte, qpValueSize), make([]byte, qpValueSize)
	pop := func() error {
		err := m.Pop(got)
		if errors.Is(err, maps.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		popped = append(popped, got...)
		return nil
	}
	for j := range count {
		putPattern(v, id, uint32(j))
		for {
			err := m.Push(v, maps.UpdateAny)
			if err == nil {
				break
			}
			if !errors.Is(err, maps.ErrFull) {
				return fmt.Errorf("push: %v", err)
			}
			if err := pop(); err != nil { // full: make room, then retry
				return fmt.Errorf("pop: %v", err)
			}
		}
		if j%3 != 2 { // pop less than we push: the queue fills up now and then
			if err := pop(); err != nil {
				return fmt.Errorf("pop: %v", err)
			}
		}
	}
	return os.WriteFile(args[4], popped, 0o600)
})

// TestQueueManyProcesses: several processes push and pop one queue at once.
// Every value pushed is popped exactly once (by a worker, or by the parent
// draining at the end), none is torn, and each popper sees each producer's
// values in the order it pushed them (a queue is FIFO; one popper's pops
// are ordered in time).
func TestQueueManyProcesses(t *testing.T) {
	r, path := newRegion(t)
	const procs = 4
	count := scaled(4000, 1000)
	m := createMap(t, r, maps.Spec{Name: "mpq", Type: maps.Queue, ValueSize: qpValueSize, MaxEntries: 64})
	dir := t.TempDir()
	out := func(i int) string { return filepath.Join(dir, fmt.Sprintf("popped.%d", i)) }
	cs := startAll(t, procs, "queue-worker", func(i int) []string {
		return []string{path, "mpq", strconv.Itoa(i), strconv.Itoa(count), out(i)}
	})
	for _, c := range cs {
		c.Wait(t)
	}
	var lists [][]byte
	for i := range procs {
		b, err := os.ReadFile(out(i))
		noErr(t, "read popped values", err)
		lists = append(lists, b)
	}
	var rest []byte
	got := make([]byte, qpValueSize)
	for m.Pop(got) == nil {
		rest = append(rest, got...)
	}
	lists = append(lists, rest)

	seen := make([][]bool, procs)
	for i := range seen {
		seen[i] = make([]bool, count)
	}
	total := 0
	for who, l := range lists {
		last := make([]int, procs)
		for i := range last {
			last[i] = -1
		}
		for off := 0; off < len(l); off += qpValueSize {
			v := l[off : off+qpValueSize]
			id := binary.LittleEndian.Uint64(v) >> 32
			if id >= procs {
				t.Fatalf("popper %d got a value of producer %d: % x", who, id, v)
			}
			j, err := checkPattern(v, id)
			if err != nil {
				t.Fatalf("popper %d: %v", who, err)
			}
			if int(j) >= count || seen[id][j] {
				t.Fatalf("value %d of producer %d popped twice (or out of range)", j, id)
			}
			if int(j) <= last[id] {
				t.Errorf("popper %d got value %d of producer %d after value %d: not FIFO", who, j, id, last[id])
			}
			last[id] = int(j)
			seen[id][j] = true
			total++
		}
	}
	if total != procs*count {
		for id := range seen {
			for j, ok := range seen[id] {
				if !ok {
					t.Errorf("value %d of producer %d was never popped", j, id)
					break
				}
			}
		}
		t.Fatalf("%d values popped, %d pushed", total, procs*count)
	}
}

// pusher: path name — push 0, 1, 2, ... with BPF_EXIST (the queue stays
// full, rolling) until killed, saying "tick" every 1000 pushes.
var _ = proctest.Register("queue-pusher", func(args []string) error {
	r, m, err := openChild(args[0], args[1], 0)
	if err != nil {
		return err
	}
	defer r.Close()
	v := make([]byte, 8)
	for i := uint64(0); ; i++ {
		binary.LittleEndian.PutUint64(v, i)
		if err := m.Push(v, maps.UpdateExist); err != nil {
			return err
		}
		if i%1000 == 999 {
			proctest.Ready("tick")
		}
	}
})

// TestQueueKilledPusher kills processes in the middle of overwriting pushes
// (perhaps holding the queue's lock, perhaps between writing a slot and
// publishing it): afterwards the queue still works, and holds consecutive
// values, none lost in the middle and none torn or half-published.
func TestQueueKilledPusher(t *testing.T) {
	r, path := newRegion(t)
	const max = 16
	m := createMap(t, r, maps.Spec{Name: "kq", Type: maps.Queue, ValueSize: 8, MaxEntries: max})
	for round := range scaled(6, 3) {
		c := startChild(t, "queue-pusher", path, "kq")
		for range 1 + round%3 {
			c.Expect(t, "tick")
		}
		c.Kill(t)
		got, err := m.Contents()
		noErr(t, "contents after a kill", err)
		if len(got) != max {
			t.Fatalf("round %d: %d elements after the kill, want %d (the pusher kept it full)", round, len(got), max)
		}
		first := binary.LittleEndian.Uint64(got[0])
		for i, v := range got {
			if x := binary.LittleEndian.Uint64(v); x != first+uint64(i) {
				t.Fatalf("round %d: element %d is %d, want %d (contents %x)", round, i, x, first+uint64(i), got)
			}
		}
		// Empty it for the next round; a lock the victim held is recovered.
		v := make([]byte, 8)
		for range max {
			noErr(t, "pop after a kill", m.Pop(v))
		}
		wantErr(t, "pop from the emptied queue", m.Pop(v), maps.ErrKeyNotExist, syscall.ENOENT)
	}
}

func TestQueueOpenedByName(t *testing.T) {
	r, _ := newRegion(t)
	m := createMap(t, r, maps.Spec{Name: "st", Type: maps.Stack, ValueSize: 2, MaxEntries: 3})
	noErr(t, "push", m.Push([]byte{1, 2}, 0))
	o, err := r.OpenMap("st", 0)
	noErr(t, "open", err)
	if o.Type() != maps.Stack || o.KeySize() != 0 || o.ValueSize() != 2 || o.MaxEntries() != 3 {
		t.Fatalf("opened %s key %d value %d entries %d", o.Type(), o.KeySize(), o.ValueSize(), o.MaxEntries())
	}
	got := make([]byte, 2)
	noErr(t, "pop through the second handle", o.Pop(got))
	if got[0] != 1 || got[1] != 2 {
		t.Fatalf("popped %x", got)
	}
	wantErr(t, "pop through the first handle", m.Pop(got), maps.ErrKeyNotExist, syscall.ENOENT)
}

// TestQueueProgramHelpers: bpf_map_push_elem / pop / peek from programs
// write a frozen map (freezing is for user space only) but not a
// BPF_F_RDONLY_PROG one.
func TestQueueProgramHelpers(t *testing.T) {
	r, _ := newRegion(t)
	q := createMap(t, r, maps.Spec{Name: "pq", Type: maps.Queue, ValueSize: 4, MaxEntries: 2})
	noErr(t, "freeze", q.Freeze())
	noErr(t, "program push 1", q.ProgPush(u32v(1), maps.UpdateAny))
	noErr(t, "program push 2", q.ProgPush(u32v(2), maps.UpdateAny))
	wantErr(t, "program push into a full queue", q.ProgPush(u32v(3), maps.UpdateAny), maps.ErrFull, syscall.E2BIG)
	noErr(t, "program overwriting push", q.ProgPush(u32v(3), maps.UpdateExist))
	got := make([]byte, 4)
	noErr(t, "program peek", q.ProgPeek(got))
	if binary.NativeEndian.Uint32(got) != 2 {
		t.Fatalf("program peek = %x, want 2", got)
	}
	noErr(t, "program pop", q.ProgPop(got))
	noErr(t, "program pop", q.ProgPop(got))
	if binary.NativeEndian.Uint32(got) != 3 {
		t.Fatalf("program pop = %x, want 3", got)
	}
	wantErr(t, "program pop of an empty queue", q.ProgPop(got), maps.ErrKeyNotExist, syscall.ENOENT)

	ro := createMap(t, r, maps.Spec{Name: "pro", Type: maps.Stack, ValueSize: 4, MaxEntries: 2, Flags: maps.FlagRdOnlyProg})
	wantErr(t, "program push into a RDONLY_PROG stack", ro.ProgPush(u32v(1), 0), maps.ErrPermission, syscall.EPERM)

	b := createMap(t, r, bloomSpec("pb", 4, 10, 0))
	noErr(t, "program push into a bloom filter", b.ProgPush(u32v(7), 0))
	noErr(t, "program peek of a pushed value", b.ProgPeek(u32v(7)))
	wantErr(t, "program pop of a bloom filter", b.ProgPop(got), maps.ErrOpNotSupported, syscall.EOPNOTSUPP)
	h := createMap(t, r, maps.Spec{Name: "ph", Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	wantErr(t, "program push into a hash", h.ProgPush(u32v(1), 0), maps.ErrInvalid, syscall.EINVAL)
}
