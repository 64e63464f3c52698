package maps

import (
	"encoding/binary"
	"math/bits"
)

// The kernel hashes map keys with Bob Jenkins' lookup3 ("jhash",
// include/linux/jhash.h): jhash2 over 32-bit words when the key size is a
// multiple of 4, byte-wise jhash otherwise. With BPF_F_ZERO_SEED the seed
// is 0 and the bucket order (hence get_next_key order) is the kernel's.

const jhashInitval = 0xdeadbeef

func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func jhashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// jhash hashes bytes (the kernel's jhash()).
func jhash(k []byte, initval uint32) uint32 {
	n := uint32(len(k))
	a := jhashInitval + n + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	switch len(k) {
	case 12:
		c += uint32(k[11]) << 24
		fallthrough
	case 11:
		c += uint32(k[10]) << 16
		fallthrough
	case 10:
		c += uint32(k[9]) << 8
		fallthrough
	case 9:
		c += uint32(k[8])
		fallthrough
	case 8:
		b += uint32(k[7]) << 24
		fallthrough
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += uint32(k[3]) << 24
		fallthrough
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
		return jhashFinal(a, b, c)
	}
	return c
}

// jhash2 hashes 32-bit words in host order (the kernel's jhash2()).
func jhash2(k []byte, initval uint32) uint32 {
	n := uint32(len(k) / 4)
	a := jhashInitval + n<<2 + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.NativeEndian.Uint32(k)
		b += binary.NativeEndian.Uint32(k[4:])
		c += binary.NativeEndian.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	switch len(k) {
	case 12:
		c += binary.NativeEndian.Uint32(k[8:])
		fallthrough
	case 8:
		b += binary.NativeEndian.Uint32(k[4:])
		fallthrough
	case 4:
		a += binary.NativeEndian.Uint32(k)
		return jhashFinal(a, b, c)
	}
	return c
}

// keyHash is htab_map_hash. 4- and 8-byte keys (most keys) take
// jhash2's one- and two-word cases directly, without its loop.
func keyHash(key []byte, seed uint32) uint32 {
	switch len(key) {
	case 4:
		a := jhashInitval + 4 + seed
		return jhashFinal(a+binary.NativeEndian.Uint32(key), a, a)
	case 8:
		a := jhashInitval + 8 + seed
		return jhashFinal(a+binary.NativeEndian.Uint32(key), a+binary.NativeEndian.Uint32(key[4:]), a)
	}
	if len(key)%4 == 0 {
		return jhash2(key, seed)
	}
	return jhash(key, seed)
}
