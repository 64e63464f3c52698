//go:build !race

package rcu

// raceEnabled is set in race-detector builds (see race.go).
const raceEnabled = false
