// Package examples holds the eBPF objects the userbpf command embeds, with
// their C sources next to them (rebuild with make).
package examples

import _ "embed"

// Demo is demo.o, the object `userbpf demo` loads: built from demo.c with
// clang-19 -O2 -g -target bpf -mcpu=v3 and stripped of DWARF (BTF kept).
//
//go:embed demo.o
var Demo []byte
