//go:build race

package rcu

// raceEnabled is set in race-detector builds. The detector cannot see that
// pinning a goroutine to its P makes it the only user of that P's Reader
// (sync.Pool hides the same pattern from it by hand), so ReadPinned takes
// the pooled path there, whose busy flag the detector does see.
const raceEnabled = true
