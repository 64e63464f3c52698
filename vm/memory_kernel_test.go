package vm

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
)

var memVals = []uint64{
	0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
	0x8000000000000000, 0xffffffffffffffff, 0x0123456789abcdef, 0xfedcba9876543210, 0x80ff7f0080ff7f00,
}

// TestKernelLoads: every load size, zero- and sign-extending, at every
// aligned offset of two stack words.
func TestKernelLoads(t *testing.T) {
	var probes []probe
	for _, a := range memVals {
		b := ^a * 0x9e3779b97f4a7c15
		for _, sz := range []asm.Size{asm.Byte, asm.Half, asm.Word, asm.DWord} {
			for off := -16; off < 0; off += sz.Sizeof() {
				pre := asm.Instructions{
					asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
					asm.StoreMem(asm.RFP, -8, asm.R2, asm.DWord),
				}
				probes = append(probes, probe{
					name: fmt.Sprintf("ldx%v[%d] of %#x %#x", sz, off, a, b), in: []uint64{a, b},
					insns: append(pre, asm.LoadMem(asm.R3, asm.RFP, int16(off), sz)),
					out:   []asm.Register{asm.R3},
				})
				if sz != asm.DWord {
					probes = append(probes, probe{
						name: fmt.Sprintf("ldxsx%v[%d] of %#x %#x", sz, off, a, b), in: []uint64{a, b},
						insns: append(pre, asm.LoadMemSX(asm.R3, asm.RFP, int16(off), sz)),
						out:   []asm.Register{asm.R3},
					})
				}
			}
		}
	}
	t.Logf("%d loads compared with the kernel", diff(t, probes))
}

// TestKernelStores: register and immediate stores of every size at every
// aligned offset into a stack word prefilled with a pattern.
func TestKernelStores(t *testing.T) {
	var probes []probe
	for _, a := range memVals {
		for _, sz := range []asm.Size{asm.Byte, asm.Half, asm.Word, asm.DWord} {
			for off := -8; off < 0; off += sz.Sizeof() {
				fill := asm.Instructions{
					asm.LoadImm(asm.R4, 0x1122334455667788, asm.DWord),
					asm.StoreMem(asm.RFP, -8, asm.R4, asm.DWord),
				}
				probes = append(probes, probe{
					name: fmt.Sprintf("stx%v[%d] %#x", sz, off, a), in: []uint64{a},
					insns: append(fill,
						asm.StoreMem(asm.RFP, int16(off), asm.R1, sz),
						asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord)),
					out: []asm.Register{asm.R3},
				})
				imm := int64(int32(a))
				probes = append(probes, probe{
					name: fmt.Sprintf("st%v[%d] %d", sz, off, imm), in: []uint64{a},
					insns: append(fill,
						storeImm(asm.RFP, int16(off), imm, sz),
						asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord)),
					out: []asm.Register{asm.R3},
				})
			}
		}
	}
	t.Logf("%d stores compared with the kernel", diff(t, probes))
}

// TestKernelAtomics: every atomic operation, 32- and 64-bit, on a stack
// slot: the value fetched (or R0 of cmpxchg) and the whole 8-byte slot
// afterwards.
func TestKernelAtomics(t *testing.T) {
	ops := []struct {
		name string
		op   asm.AtomicOp
	}{
		{"add", asm.AddAtomic}, {"or", asm.OrAtomic}, {"and", asm.AndAtomic}, {"xor", asm.XorAtomic},
		{"fetch_add", asm.FetchAdd}, {"fetch_or", asm.FetchOr}, {"fetch_and", asm.FetchAnd},
		{"fetch_xor", asm.FetchXor}, {"xchg", asm.Xchg}, {"cmpxchg", asm.CmpXchg},
	}
	vals := []uint64{0, 1, 0x80000000, 0xffffffff, 0x1_0000_0001, 0x8000000000000000, 0xffffffffffffffff, 0x0123456789abcdef}
	var probes []probe
	for _, o := range ops {
		for _, sz := range []asm.Size{asm.Word, asm.DWord} {
			offs := []int16{-8}
			if sz == asm.Word {
				offs = []int16{-8, -4}
			}
			for _, off := range offs {
				for _, a := range vals {
					for _, b := range vals {
						expects := []uint64{a ^ 0xdead_0000_0001}
						if o.op == asm.CmpXchg {
							expects = []uint64{a, a ^ 1, a ^ 0xffffffff_00000000}
						}
						for _, want := range expects {
							probes = append(probes, probe{
								name: fmt.Sprintf("%s%d[%d](mem %#x, src %#x, r0 %#x)", o.name, sz.Sizeof()*8, off, a, b, want),
								in:   []uint64{a, b, want},
								insns: asm.Instructions{
									asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
									asm.Mov.Reg(asm.R0, asm.R3),
									atomicInsn(o.op, asm.RFP, asm.R2, sz, off),
									asm.LoadMem(asm.R4, asm.RFP, -8, asm.DWord),
								},
								out: []asm.Register{asm.R0, asm.R2, asm.R4},
							})
						}
					}
				}
			}
		}
	}
	t.Logf("%d atomic results compared with the kernel", diff(t, probes))
}

// TestKernelLoadAcquireStoreRelease: the BPF_LOAD_ACQ / BPF_STORE_REL
// atomics of every size.
func TestKernelLoadAcquireStoreRelease(t *testing.T) {
	var probes []probe
	for _, a := range memVals {
		for _, sz := range []asm.Size{asm.Byte, asm.Half, asm.Word, asm.DWord} {
			for off := -8; off < 0; off += sz.Sizeof() {
				probes = append(probes, probe{
					name: fmt.Sprintf("load_acq%v[%d] %#x", sz, off, a), in: []uint64{a},
					insns: asm.Instructions{
						asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
						withAtomicImm(asm.LoadAcquire(asm.R3, asm.RFP, sz, int16(off))),
					},
					out: []asm.Register{asm.R3},
				}, probe{
					name: fmt.Sprintf("store_rel%v[%d] %#x", sz, off, a), in: []uint64{a},
					insns: asm.Instructions{
						asm.LoadImm(asm.R4, 0x1122334455667788, asm.DWord),
						asm.StoreMem(asm.RFP, -8, asm.R4, asm.DWord),
						withAtomicImm(asm.StoreRelease(asm.RFP, asm.R1, sz, int16(off))),
						asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
					},
					out: []asm.Register{asm.R3},
				})
			}
		}
	}
	t.Logf("%d load-acquire/store-release results compared with the kernel", diff(t, probes))
}

// TestKernelLoadImm64: 64-bit immediates and the gotol (JMP32 JA) form.
func TestKernelLoadImm64(t *testing.T) {
	var probes []probe
	for i, v := range vals64 {
		label := fmt.Sprintf("far%d", i)
		probes = append(probes, probe{
			name: fmt.Sprintf("lddw %#x", v), in: []uint64{0},
			insns: asm.Instructions{asm.LoadImm(asm.R1, int64(v), asm.DWord)},
			out:   []asm.Register{asm.R1},
		}, probe{
			name: fmt.Sprintf("gotol over lddw %#x", v), in: []uint64{0, 0},
			insns: asm.Instructions{
				asm.Mov.Imm(asm.R1, 7),
				asm.JEq.Imm(asm.R2, 1, label+"mid"),
				asm.LongJump(label),
				asm.LoadImm(asm.R1, int64(v), asm.DWord).WithSymbol(label + "mid"),
				asm.Mov.Imm(asm.R1, 9),
				asm.Add.Imm(asm.R1, 1).WithSymbol(label),
			},
			out: []asm.Register{asm.R1},
		})
	}
	t.Logf("%d immediate results compared with the kernel", diff(t, probes))
}

// atomicInsn builds a BPF_ATOMIC instruction. cilium/ebpf v0.22's Marshal
// takes imm from Constant before it derives Constant from the opcode's
// atomic bits, so an instruction built with AtomicOp.Mem would be
// marshalled as an atomic add; set Constant ourselves.
func atomicInsn(op asm.AtomicOp, dst, src asm.Register, sz asm.Size, off int16) asm.Instruction {
	return withAtomicImm(op.Mem(dst, src, sz, off))
}

func withAtomicImm(ins asm.Instruction) asm.Instruction {
	ins.Constant = int64(ins.OpCode.AtomicOp() >> 8)
	return ins
}

// storeImm builds ST of every size (asm.StoreImm refuses DWord).
func storeImm(dst asm.Register, off int16, imm int64, sz asm.Size) asm.Instruction {
	return asm.Instruction{
		OpCode: asm.OpCode(asm.StClass).SetMode(asm.MemMode).SetSize(sz),
		Dst:    dst, Offset: off, Constant: imm,
	}
}
