// Package ringbuf produces into and consumes from the ring buffer maps of a
// region (RINGBUF and USER_RINGBUF), with the kernel's memory layout,
// record format and rules (see maps/ringbuf.go for the layout).
//
// Any number of processes may produce at once: reservations are serialized
// by a spin lock in the ring (as the kernel serializes them), taken over if
// its holder dies. One consumer at a time owns the consumer side; it sleeps
// on a futex when the ring is empty and producers wake it following the
// kernel's rules (adaptive wake-up, BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP),
// calling futex wake only when a consumer actually sleeps.
//
// Producing:
//
//	ring, err := ringbuf.Open(m) // m: a RINGBUF or USER_RINGBUF map
//	rec, err := ring.Reserve(64) // rec is the record's payload, in place
//	copy(rec, data)
//	err = ring.Submit(rec, 0)
//
// Consuming a RINGBUF:
//
//	rd, err := ringbuf.NewReader(m)
//	rec, err := rd.Read(ctx) // sleeps until a record is there or ctx is done
//
// Draining a USER_RINGBUF (what bpf_user_ringbuf_drain does for programs):
//
//	n, err := ring.Drain(func(sample []byte) bool { ...; return false }, 0)
//
// Crashes: a consumer killed mid-read leaves the consumer position where it
// was (the record it was copying is read again by the next consumer); a
// producer killed between Reserve and Submit leaves a BUSY record whose
// header names it, which the consumer discards once that process is dead.
// docs/ringbuf.md has the details.
package ringbuf
