package vm

import "math/bits"

// Arithmetic whose ISA semantics differ from Go's operators or need a
// guard (RFC 9669 §4.1): division by zero yields 0, modulo by zero leaves
// the dividend, and signed overflow (MIN / -1) yields MIN with remainder
// 0. Go's / and % already give MIN and 0 for the overflow case.

func div64(a, b uint64) uint64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mod64(a, b uint64) uint64 {
	if b == 0 {
		return a
	}
	return a % b
}

func sdiv64(a, b uint64) uint64 {
	if b == 0 {
		return 0
	}
	return uint64(int64(a) / int64(b))
}

func smod64(a, b uint64) uint64 {
	if b == 0 {
		return a
	}
	return uint64(int64(a) % int64(b))
}

func div32(a, b uint32) uint64 {
	if b == 0 {
		return 0
	}
	return uint64(a / b)
}

func mod32(a, b uint32) uint64 {
	if b == 0 {
		return uint64(a)
	}
	return uint64(a % b)
}

func sdiv32(a, b uint32) uint64 {
	if b == 0 {
		return 0
	}
	return uint64(uint32(int32(a) / int32(b)))
}

func smod32(a, b uint32) uint64 {
	if b == 0 {
		return uint64(a)
	}
	return uint64(uint32(int32(a) % int32(b)))
}

func swap16(v uint64) uint64 { return uint64(bits.ReverseBytes16(uint16(v))) }
func swap32(v uint64) uint64 { return uint64(bits.ReverseBytes32(uint32(v))) }
func swap64(v uint64) uint64 { return bits.ReverseBytes64(v) }
