package vm

// The wire encoding of the opcode byte is in package internal/isa.

// Internal operation codes: a dense enumeration the interpreter switches
// over (the compiler turns the switch into a jump table). Each wire
// instruction is decoded once, at prepare time, into one of these; the
// variants that the wire encodes in off or imm (sdiv, smod, movsx, byte
// swaps, atomics) get their own codes.
const (
	opInvalid uint8 = iota // imm indexes code.reasons

	opAdd64K
	opAdd64X
	opSub64K
	opSub64X
	opMul64K
	opMul64X
	opDiv64K
	opDiv64X
	opSDiv64K
	opSDiv64X
	opMod64K
	opMod64X
	opSMod64K
	opSMod64X
	opOr64K
	opOr64X
	opAnd64K
	opAnd64X
	opLsh64K
	opLsh64X
	opRsh64K
	opRsh64X
	opArsh64K
	opArsh64X
	opXor64K
	opXor64X
	opMov64K
	opMov64X
	opMovSX64B
	opMovSX64H
	opMovSX64W
	opNeg64

	opAdd32K
	opAdd32X
	opSub32K
	opSub32X
	opMul32K
	opMul32X
	opDiv32K
	opDiv32X
	opSDiv32K
	opSDiv32X
	opMod32K
	opMod32X
	opSMod32K
	opSMod32X
	opOr32K
	opOr32X
	opAnd32K
	opAnd32X
	opLsh32K
	opLsh32X
	opRsh32K
	opRsh32X
	opArsh32K
	opArsh32X
	opXor32K
	opXor32X
	opMov32K
	opMov32X
	opMovSX32B
	opMovSX32H
	opNeg32

	opZext16 // to-LE on a little-endian host: truncate
	opZext32
	opNop
	opSwap16 // to-BE on a little-endian host, or BSWAP
	opSwap32
	opSwap64

	opJA   // off
	opJA32 // imm (gotol)
	opJEqK
	opJEqX
	opJGtK
	opJGtX
	opJGeK
	opJGeX
	opJSetK
	opJSetX
	opJNeK
	opJNeX
	opJSGtK
	opJSGtX
	opJSGeK
	opJSGeX
	opJLtK
	opJLtX
	opJLeK
	opJLeX
	opJSLtK
	opJSLtX
	opJSLeK
	opJSLeX
	opJEq32K
	opJEq32X
	opJGt32K
	opJGt32X
	opJGe32K
	opJGe32X
	opJSet32K
	opJSet32X
	opJNe32K
	opJNe32X
	opJSGt32K
	opJSGt32X
	opJSGe32K
	opJSGe32X
	opJLt32K
	opJLt32X
	opJLe32K
	opJLe32X
	opJSLt32K
	opJSLt32X
	opJSLe32K
	opJSLe32X
	opMayGoto

	opCallHelper
	opCallLocal
	opCallKfunc
	opCallArrayLookup // bpf_map_lookup_elem inlined on the ARRAY Program.Maps[imm] (inline.go)
	opCallSpinLock    // bpf_spin_lock: uncontended in fast, else the helper (locks.go)
	opCallSpinUnlock  // bpf_spin_unlock: likewise

	// Superinstructions (fuse.go): "rD = rS" and the ALU-with-immediate
	// instruction after it on rD, run as one. The second instruction stays
	// in place for jumps that land on it.
	opMovAdd64K
	opMovAnd64K
	opMovOr64K
	opMovXor64K
	opMovLsh64K
	opMovRsh64K
	opMovArsh64K
	opMovMul64K
	opMov32Add32K
	opExit

	opLdImm64   // value: imm (low) | next slot's imm (high)
	opLdImm64Hi // second slot of LD_IMM64: landing here is an error

	opLdxB
	opLdxH
	opLdxW
	opLdxDW
	opLdxSB
	opLdxSH
	opLdxSW
	opStB
	opStH
	opStW
	opStDW
	opStxB
	opStxH
	opStxW
	opStxDW

	opAtomicAdd32
	opAtomicOr32
	opAtomicAnd32
	opAtomicXor32
	opAtomicFetchAdd32
	opAtomicFetchOr32
	opAtomicFetchAnd32
	opAtomicFetchXor32
	opXchg32
	opCmpXchg32
	opAtomicAdd64
	opAtomicOr64
	opAtomicAnd64
	opAtomicXor64
	opAtomicFetchAdd64
	opAtomicFetchOr64
	opAtomicFetchAnd64
	opAtomicFetchXor64
	opXchg64
	opCmpXchg64
	opLoadAcqB
	opLoadAcqH
	opLoadAcqW
	opLoadAcqDW
	opStoreRelB
	opStoreRelH
	opStoreRelW
	opStoreRelDW

	opLdAbsB
	opLdAbsH
	opLdAbsW
	opLdIndB
	opLdIndH
	opLdIndW

	opFellOff // sentinel after the last instruction
)
