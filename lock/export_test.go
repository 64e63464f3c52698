package lock

import "time"

// SetCheckIntervals replaces the liveness-check intervals of the slow path
// and returns a function that restores them. Tests that must prove a
// waiter was woken (rather than timing out and re-checking) stretch them
// to hours. Call it only while no lock operation is in flight.
func SetCheckIntervals(first, max time.Duration) (restore func()) {
	f, m := firstCheck, maxCheck
	firstCheck, maxCheck = first, max
	return func() { firstCheck, maxCheck = f, m }
}
