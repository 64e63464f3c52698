//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package vm

// hostBigEndian decides which of BPF_TO_LE / BPF_TO_BE is a byte swap.
const hostBigEndian = true
