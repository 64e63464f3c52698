package vm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/userbpf/userbpf/internal/isa"
)

// The differential tests build tiny programs with cilium/ebpf's asm, load
// them into the running kernel as socket filters, run them with
// BPF_PROG_TEST_RUN, and compare what they computed with what the
// interpreter computes from the same instructions.
//
// A group of probes becomes one program. Probe k's inputs are loaded from
// the map value into R1, R2, R3 (so the verifier cannot fold them), its
// instructions run, and the registers it names as outputs are stored back
// into the value. The value is an ARRAY map's single element, referenced
// with a PseudoMapValue load; in the VM it is a Go buffer.

type probe struct {
	name  string
	in    []uint64
	insns asm.Instructions
	out   []asm.Register
}

var (
	kernelOnce sync.Once
	kernelErr  error
)

func needKernel(t testing.TB) {
	t.Helper()
	kernelOnce.Do(func() {
		_ = rlimit.RemoveMemlock()
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
		if err != nil {
			kernelErr = err
			return
		}
		m.Close()
	})
	if kernelErr != nil {
		t.Skipf("bpf(2) unavailable, skipping kernel-differential test: %v", kernelErr)
	}
}

// group is a program built from probes: its instructions (with the map
// referenced by fd) and the value layout.
type group struct {
	insns   asm.Instructions
	value   []byte // initial value: inputs, then zeroed outputs
	fd      int
	outOff  int
	outs    []string // name of each output slot
	nInputs int
}

func buildGroup(probes []probe, fd int) group {
	var g group
	nin, nout := 0, 0
	for _, p := range probes {
		nin += len(p.in)
		nout += len(p.out)
	}
	g.value = make([]byte, 8*(nin+nout))
	g.fd = fd
	g.outOff = 8 * nin
	insns := asm.Instructions{asm.LoadMapValue(asm.R6, fd, 0)}
	in, out := 0, 0
	for _, p := range probes {
		for j, v := range p.in {
			binary.LittleEndian.PutUint64(g.value[8*in:], v)
			insns = append(insns, asm.LoadMem(asm.R1+asm.Register(j), asm.R6, int16(8*in), asm.DWord))
			in++
		}
		insns = append(insns, p.insns...)
		for _, r := range p.out {
			insns = append(insns, asm.StoreMem(asm.R6, int16(g.outOff+8*out), r, asm.DWord))
			g.outs = append(g.outs, fmt.Sprintf("%s -> %s", p.name, r))
			out++
		}
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
	g.insns = insns
	return g
}

// toVM converts cilium instructions to ours. Map references keep their
// "fd", which unit tests use as the index into Program.Maps.
func toVM(t testing.TB, insns asm.Instructions) []Insn {
	t.Helper()
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	out, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// toVMFd converts a program referencing the kernel map fd; the fd becomes
// index 0.
func toVMFd(t testing.TB, insns asm.Instructions, fd int) []Insn {
	out := toVM(t, insns)
	for i := range out {
		if out[i].Op == isa.OpLdImm64 && (out[i].Src == PseudoMapValue || out[i].Src == PseudoMapFD) && out[i].Imm == int32(fd) {
			out[i].Imm = 0
		}
	}
	return out
}

// runKernel loads g's program (built against map fd) and runs it once,
// returning the map value afterwards.
func runKernel(t testing.TB, probes []probe) (value []byte, g group) {
	t.Helper()
	size := 0
	for _, p := range probes {
		size += 8 * (len(p.in) + len(p.out))
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(size), MaxEntries: 1})
	if err != nil {
		t.Fatalf("create map: %v", err)
	}
	defer m.Close()
	g = buildGroup(probes, m.FD())
	if err := m.Update(uint32(0), g.value, ebpf.UpdateAny); err != nil {
		t.Fatalf("update map: %v", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, Instructions: g.insns, License: "GPL"})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("kernel rejected the program: %+v", ve)
		}
		t.Fatalf("load program: %v", err)
	}
	defer prog.Close()
	if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	value = make([]byte, size)
	if err := m.Lookup(uint32(0), &value); err != nil {
		t.Fatalf("lookup: %v", err)
	}
	return value, g
}

// alignedBuf returns an 8-byte-aligned buffer of n bytes.
func alignedBuf(n int) []byte {
	u := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(u))), n)
}

// runVM runs g (already built for the kernel) in the interpreter.
func runVM(t testing.TB, g group) []byte {
	t.Helper()
	val := alignedBuf(len(g.value))
	copy(val, g.value)
	p := &Program{Name: "diff", Insns: toVMFd(t, g.insns, g.fd), Maps: []MapRef{{
		ValueAddr: uintptr(unsafe.Pointer(&val[0])), ValueSize: uint32(len(val)),
	}}}
	if err := Validate(p); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	m := NewMachine()
	if _, err := p.Run(m, make([]byte, 64)); err != nil {
		t.Fatalf("vm run: %v", err)
	}
	return val
}

// diff runs probes in the kernel and the VM and compares every output.
// It returns the number of outputs compared.
func diff(t *testing.T, probes []probe) int {
	t.Helper()
	needKernel(t)
	// Offsets into the value are 16-bit: split into programs of at most
	// 4000 slots.
	total := 0
	for len(probes) > 0 {
		n, slots := 0, 0
		for n < len(probes) && slots+len(probes[n].in)+len(probes[n].out) <= 4000 {
			slots += len(probes[n].in) + len(probes[n].out)
			n++
		}
		total += diffOne(t, probes[:n])
		probes = probes[n:]
	}
	return total
}

func diffOne(t *testing.T, probes []probe) int {
	t.Helper()
	kv, g := runKernel(t, probes)
	vv := runVM(t, g)
	bad := 0
	for i, name := range g.outs {
		k := binary.LittleEndian.Uint64(kv[g.outOff+8*i:])
		v := binary.LittleEndian.Uint64(vv[g.outOff+8*i:])
		if k != v {
			if bad < 20 {
				t.Errorf("%s: kernel %#x, vm %#x", name, k, v)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d outputs differ", bad, len(g.outs))
	}
	return len(g.outs)
}
