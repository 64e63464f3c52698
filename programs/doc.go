// Package programs runs loaded eBPF programs against the maps of a region:
// it is the host the interpreter (package vm) calls back into. It provides
// the map, spin-lock and ring-buffer helpers, stores programs in the region
// so that any attached process can run them by name, and runs them the way
// the kernel runs a program: on one (virtual) CPU, inside an RCU read-side
// section, with every lock it took released and every ring-buffer record it
// reserved discarded if the run stops early.
package programs
