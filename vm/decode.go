package vm

import (
	"encoding/binary"
	"fmt"
)

// InsnSize is the size of one encoded instruction.
const InsnSize = 8

// Decode parses instructions in the kernel's little-endian wire format
// (RFC 9669 §3): 8 bytes each, registers packed dst in the low nibble and
// src in the high nibble. A 64-bit immediate load decodes to two Insns.
func Decode(b []byte) ([]Insn, error) {
	if len(b)%InsnSize != 0 {
		return nil, fmt.Errorf("vm: %d bytes is not a whole number of instructions", len(b))
	}
	insns := make([]Insn, len(b)/InsnSize)
	for i := range insns {
		insns[i] = decodeInsn(b[i*InsnSize:])
	}
	return insns, nil
}

func decodeInsn(b []byte) Insn {
	return Insn{
		Op:  b[0],
		Dst: b[1] & 0x0f,
		Src: b[1] >> 4,
		Off: int16(binary.LittleEndian.Uint16(b[2:])),
		Imm: int32(binary.LittleEndian.Uint32(b[4:])),
	}
}

// Encode is the inverse of Decode. Register numbers above 15 are
// truncated to their low nibble.
func Encode(insns []Insn) []byte {
	b := make([]byte, len(insns)*InsnSize)
	for i, ins := range insns {
		p := b[i*InsnSize:]
		p[0] = ins.Op
		p[1] = ins.Dst&0x0f | ins.Src<<4
		binary.LittleEndian.PutUint16(p[2:], uint16(ins.Off))
		binary.LittleEndian.PutUint32(p[4:], uint32(ins.Imm))
	}
	return b
}
