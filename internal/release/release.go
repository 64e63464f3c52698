// Package release has release stores: a store that does not become
// visible before the loads and stores that came before it. A writer
// publishing a linked element, a record header or a value, and an RCU
// reader leaving its section, need no more than that.
//
// amd64 keeps stores in program order and never moves a store before an
// earlier load (TSO), so a plain MOV is a release store, where sync/atomic's
// Store is an XCHG: a full fence that waits for every pending store and
// miss. On amd64 the stores are assembly functions, so that the compiler
// cannot move memory accesses across them either. An aligned 4- or 8-byte
// MOV is single-copy atomic: a concurrent atomic load sees the old or the
// new value. Elsewhere they are sync/atomic stores (a store-release on
// arm64).
package release
