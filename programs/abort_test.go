package programs_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/lock"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/programs"
	"github.com/userbpf/userbpf/ringbuf"
	"github.com/userbpf/userbpf/vm"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// The abort test's programs: testdata/abort_ok.c (the kernel's verifier
// accepts them) and testdata/abort_bad.c (it refuses them; stored here
// without verification). Every faulting one bumps locked.aborts under the
// lock before it faults.
const (
	okObject  = "../testdata/abort_ok.o"
	badObject = "../testdata/abort_bad.o"
	// the struct locked_counter fields
	offValue  = 8
	offAborts = 16
	// __sk_buff offsets of the fields the programs read
	skbSize, skbMark, skbData, skbDataEnd = 192, 8, 76, 80
)

// fault is one kind of abort: the program that causes it and what the
// caller must see.
type fault struct {
	prog    string
	ctx     func() []byte
	want    error // the vm sentinel errors.Is must find
	kind    programs.FaultKind
	lock    bool                               // the program held the lock when it faulted
	records int                                // ring-buffer records it had reserved
	insn    func(insns []vm.Insn, pc int) bool // the faulting instruction is the expected kind
}

func skb(mark uint32) func() []byte {
	return func() []byte {
		b := make([]byte, skbSize)
		binary.NativeEndian.PutUint32(b[skbMark:], mark)
		return b
	}
}

// packetNowhere is a context whose packet pointers lead nowhere the program
// may read: the kernel's verifier accepted the bounds check against
// data_end, the read at data + (mark & 0xff) still faults.
func packetNowhere() []byte {
	b := skb(7)()
	binary.NativeEndian.PutUint32(b[skbData:], 0x1000)
	binary.NativeEndian.PutUint32(b[skbDataEnd:], 0x2000)
	return b
}

// at matches the instruction at pc against ok.
func at(ok func(vm.Insn) bool) func([]vm.Insn, int) bool {
	return func(insns []vm.Insn, pc int) bool { return pc < len(insns) && ok(insns[pc]) }
}

var (
	isLoad  = at(func(i vm.Insn) bool { return i.Op&7 == 1 }) // BPF_LDX
	isStore = at(func(i vm.Insn) bool { return i.Op&7 == 3 }) // BPF_STX
	isLocal = at(func(i vm.Insn) bool { return i.Op == 0x85 && i.Src == vm.CallLocal })
	anyInsn = at(func(vm.Insn) bool { return true })
	pastEnd = func(insns []vm.Insn, pc int) bool { return pc == len(insns) }
)

func isCall(id int32) func([]vm.Insn, int) bool {
	return at(func(i vm.Insn) bool { return i.Op == 0x85 && i.Src == vm.CallHelper && i.Imm == id })
}

const fnSpinLock, fnNumaNode = 93, 42

// faults are the kinds the test provokes; helper_panic is only a panic
// with the test helper table (installPanicHelper), else an unknown helper.
var faults = []fault{
	{"oob_store", skb(0), vm.ErrMemory, programs.FaultMemory, true, 0, isStore},
	{"packet_byte", packetNowhere, vm.ErrMemory, programs.FaultMemory, true, 0, isLoad},
	{"ring_oob", skb(0), vm.ErrMemory, programs.FaultMemory, false, 1, isLoad},
	{"spin_locked", skb(0), vm.ErrBudget, programs.FaultBudget, true, 0, anyInsn},
	{"spin_reserved", skb(0), vm.ErrBudget, programs.FaultBudget, false, 1, anyInsn},
	{"double_lock", skb(0), vm.ErrHelper, programs.FaultHelper, true, 0, isCall(fnSpinLock)},
	{"deep", skb(0), vm.ErrCallDepth, programs.FaultCallDepth, true, 0, isLocal},
	{"helper_panic", skb(0), vm.ErrPanic, programs.FaultPanic, true, 0, isCall(fnNumaNode)},
	{"fell_off", skb(0), vm.ErrFellOff, programs.FaultFellOff, false, 0, pastEnd},
}

// installPanicHelper makes bpf_get_numa_node_id, which userbpf lacks, a
// helper that panics, as a buggy host helper would.
func installPanicHelper() {
	programs.SetTestHelpers(func(t *vm.HelperTable) {
		t.Set(fnNumaNode, func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
			panic(fmt.Sprintf("test helper: deliberate panic (mark %d)", r1))
		})
	})
}

// newAbortRegion creates a region with the abort programs: abort_ok.o
// through LoadCollection (the verified path), abort_bad.o and a program
// without an exit stored directly (the unverified path).
func newAbortRegion(tb testing.TB, cpus int) (string, *userbpf.Region) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "abort")
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 256 << 20, CPUs: cpus})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	if _, err := userbpf.LoadCollection(r, okObject); err != nil {
		tb.Fatal(err)
	}
	lc, err := loader.Load(r, badObject)
	if err != nil {
		tb.Fatal(err)
	}
	for name, lp := range lc.Programs {
		if err := lp.ResolveKfuncs(programs.KfuncID); err != nil {
			tb.Fatal(err)
		}
		ms := make([]programs.StoredMap, len(lp.VM.Maps))
		for i, ref := range lp.VM.Maps {
			ms[i] = programs.StoredMap{Name: ref.Handle.(*maps.Map).Name()}
		}
		if err := programs.Store(r.Shared(), name, uint32(lp.Spec.Type), lp.VM.Insns, ms); err != nil {
			tb.Fatal(err)
		}
	}
	// r0 = 0 and no exit: the run falls off the end.
	if err := programs.Store(r.Shared(), "fell_off", 3, []vm.Insn{{Op: 0xb7}}, nil); err != nil {
		tb.Fatal(err)
	}
	return path, r
}

// lockWord is the bpf_spin_lock of the shared counter.
func lockWord(tb testing.TB, m *maps.Map) *lock.SpinLock {
	tb.Helper()
	p, err := m.ValuePointer(0)
	if err != nil {
		tb.Fatal(err)
	}
	return (*lock.SpinLock)(p)
}

func counterField(tb testing.TB, m *maps.Map, off int) uint64 {
	tb.Helper()
	v := make([]byte, 24)
	if err := m.Lookup([]byte{0, 0, 0, 0}, v, maps.FlagLock); err != nil {
		tb.Fatal(err)
	}
	return binary.NativeEndian.Uint64(v[off:])
}

// checkAbort checks that err is the abort f describes, of the program p.
func checkAbort(p *programs.Program, f fault, err error) error {
	var ab *programs.AbortError
	var ve *vm.Error
	switch {
	case !errors.As(err, &ab):
		return fmt.Errorf("%s: error %v is not an *AbortError", f.prog, err)
	case !errors.Is(err, programs.ErrAborted) || !errors.Is(err, f.want):
		return fmt.Errorf("%s: error %v: errors.Is(ErrAborted) %v, errors.Is(%v) %v", f.prog, err,
			errors.Is(err, programs.ErrAborted), f.want, errors.Is(err, f.want))
	case ab.Kind != f.kind || ab.Program != f.prog:
		return fmt.Errorf("%s: abort %+v, want kind %v", f.prog, ab, f.kind)
	case !errors.As(err, &ve) || ve.PC != ab.PC || ve.Program != f.prog || ab.PC < 0 || ab.PC > len(p.VM().Insns):
		return fmt.Errorf("%s: abort at %d, vm error %+v", f.prog, ab.PC, ve)
	case !f.insn(p.VM().Insns, ab.PC):
		return fmt.Errorf("%s: faulting insn %d is not the expected kind", f.prog, ab.PC)
	case ab.ReleasedLock != f.lock || ab.DiscardedRecords != f.records:
		return fmt.Errorf("%s: released lock %v, discarded %d records; want %v, %d", f.prog, ab.ReleasedLock, ab.DiscardedRecords, f.lock, f.records)
	case !strings.Contains(err.Error(), fmt.Sprintf("%q", f.prog)) || !strings.Contains(err.Error(), fmt.Sprintf("insn %d", ab.PC)):
		return fmt.Errorf("%s: message %q does not name the program and the instruction", f.prog, err)
	}
	return nil
}

// Every kind of fault aborts the run: the caller gets an error naming the
// program, the instruction and the kind; the lock is free, the reserved
// record is gone (the consumer is not blocked behind it), the CPU is
// free; the region counts the abort.
func TestAbortEveryKind(t *testing.T) {
	installPanicHelper()
	defer programs.SetTestHelpers(nil)
	_, r := newAbortRegion(t, 2)
	locked, err := r.OpenMap("locked", 0)
	if err != nil {
		t.Fatal(err)
	}
	inc, err := r.Program("inc")
	if err != nil {
		t.Fatal(err)
	}
	emit, err := r.Program("emit")
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
	aborts := uint64(0)
	for i, f := range faults {
		p, err := r.Program(f.prog)
		if err != nil {
			t.Fatal(err)
		}
		for round := uint64(1); round <= 2; round++ {
			_, err = p.Run(f.ctx())
			if err := checkAbort(p, f, err); err != nil {
				t.Fatal(err)
			}
			if f.prog != "fell_off" {
				aborts++
			}
			if o := lockWord(t, locked).Owner(); o != 0 {
				t.Fatalf("%s: lock still held by %#x", f.prog, o)
			}
			if n := r.Shared().LeasedCPUs(); n != 0 {
				t.Fatalf("%s: %d virtual CPUs still leased", f.prog, n)
			}
			st := p.Stats()
			var ab *programs.AbortError
			errors.As(err, &ab)
			if st.Runs != round || st.Faults != round || st.LastFault != f.kind || st.LastPC != ab.PC || st.Disabled {
				t.Fatalf("%s: stats %+v after %d aborts at %d", f.prog, st, round, ab.PC)
			}
			// The lock is usable and the ring is not blocked behind a
			// reserved record: a record emitted now is the next one read.
			if v, err := inc.Run(skb(0)()); err != nil || v != uint64(2*i)+round {
				t.Fatalf("%s: inc after the abort: %d, %v", f.prog, v, err)
			}
			if _, err := emit.Run(skb(uint32(100*i) + uint32(round))()); err != nil {
				t.Fatal(err)
			}
			// (A bound against a hang, should the ring be blocked.)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			rec, err := rd.Read(ctx)
			cancel()
			if err != nil || binary.NativeEndian.Uint64(rec.RawSample) != uint64(100*i)+round || binary.NativeEndian.Uint64(rec.RawSample[8:]) != 0xabcd {
				t.Fatalf("%s: read %x, %v", f.prog, rec.RawSample, err)
			}
			if g := rd.Ring(); g.Query(ringbuf.AvailData) != 0 {
				t.Fatalf("%s: %d bytes left in the ring", f.prog, g.Query(ringbuf.AvailData))
			}
		}
	}
	if got := counterField(t, locked, offAborts); got != aborts {
		t.Errorf("aborts counted by the programs %d, want %d", got, aborts)
	}
	if st := inc.Stats(); st.Runs != uint64(2*len(faults)) || st.Faults != 0 || st.LastFault != programs.FaultNone || st.LastPC != -1 {
		t.Errorf("inc stats %+v", st)
	}
	if rep := r.Shared().Check(); len(rep.Problems) > 0 {
		t.Errorf("region: %v", rep.Problems)
	}
}

// Without the test helper table, helper_panic calls a helper the host
// lacks: an abort of its own kind.
func TestAbortUnknownHelper(t *testing.T) {
	_, r := newAbortRegion(t, 1)
	p, err := r.Program("helper_panic")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(skb(0)())
	f := fault{"helper_panic", nil, vm.ErrUnknownHelper, programs.FaultUnknownHelper, true, 0, isCall(fnNumaNode)}
	if err := checkAbort(p, f, err); err != nil {
		t.Fatal(err)
	}
}

// A program that reaches its abort limit is disabled for every process:
// runs fail with ErrDisabled, do not count, and tail calls skip it; Enable
// resets the count.
func TestAbortLimitDisables(t *testing.T) {
	_, r := newAbortRegion(t, 1)
	p, err := r.Program("oob_store")
	if err != nil {
		t.Fatal(err)
	}
	other, err := r.Program("oob_store") // as another process's handle: shared state
	if err != nil {
		t.Fatal(err)
	}
	p.SetAbortLimit(3)
	for i := range 3 {
		if _, err := other.Run(skb(0)()); !errors.Is(err, programs.ErrAborted) || errors.Is(err, programs.ErrDisabled) {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	for _, h := range []*programs.Program{p, other} {
		if _, err := h.Run(skb(0)()); !errors.Is(err, programs.ErrDisabled) || errors.Is(err, programs.ErrAborted) || !strings.Contains(err.Error(), "oob_store") {
			t.Fatalf("run of a disabled program: %v", err)
		}
	}
	if st := p.Stats(); st.Runs != 3 || st.Faults != 3 || !st.Disabled || st.AbortLimit != 3 || st.LastFault != programs.FaultMemory {
		t.Fatalf("stats %+v", st)
	}
	other.Enable()
	if st := p.Stats(); st.Faults != 0 || st.Disabled || st.AbortLimit != 3 || st.LastFault != programs.FaultNone {
		t.Fatalf("after Enable: %+v", st)
	}
	if _, err := p.Run(skb(0)()); !errors.Is(err, vm.ErrMemory) {
		t.Fatalf("run after Enable: %v", err)
	}
	p.SetAbortLimit(0)
	for range 5 {
		p.Run(skb(0)())
	}
	if st := p.Stats(); st.Faults != 6 || st.Disabled || st.Runs != 9 {
		t.Fatalf("without a limit: %+v", st)
	}
}
