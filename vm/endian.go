package vm

import "unsafe"

// hostBigEndian decides which of BPF_TO_LE / BPF_TO_BE is a byte swap.
var hostBigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()
