// Package rcu implements epoch-based read-copy-update across the processes
// attached to a region.
//
// Readers announce themselves in reader slots in the region: entering a
// read-side section is one load of the global epoch and one store into the
// reader's slot; leaving is one store. No syscall, no lock.
//
// Synchronize advances the global epoch to e and waits until no slot holds
// an epoch below e, i.e. until every reader that entered before the call
// has left. Go's atomics are sequentially consistent, which is what makes
// this sound: an updater unpublishes an object, then Synchronize's scan
// either sees a reader's slot (and waits for it) or the reader's slot store
// comes after the scan, and then so do the reader's loads, which cannot
// find the unpublished object.
//
// Retire defers freeing a region block until a grace period that began
// after the call has ended. A reader in a process that died is cleared by
// whoever finds it while waiting, so a dead reader never blocks a grace
// period; blocks a dead process had retired are freed by the survivor that
// reaps it.
package rcu
