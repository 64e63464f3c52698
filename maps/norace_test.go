//go:build !race

package maps_test

// raceOn scales the multi-process tests down: every child is a
// race-enabled binary, several times slower.
const raceOn = false
