package shm

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// procStat reads a process's state letter and start time (clock ticks after
// boot) from /proc/PID/stat. ok is false if the process does not exist.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may contain anything, including ") ", so
	// parse from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], start, true
}

// startTime is pid's start time, or 0 if it cannot be read.
func startTime(pid int) uint64 {
	_, start, _ := procStat(pid)
	return start
}

// processAlive reports whether pid is a running (not zombie) process that
// started at start (0: do not compare).
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	state, st, ok := procStat(pid)
	if !ok {
		// /proc may hide other users' processes (hidepid): ask the kernel
		// whether the pid exists (EPERM: it does, and is not ours).
		err := unix.Kill(pid, 0)
		return err == nil || err == unix.EPERM
	}
	if state == 'Z' || state == 'X' || state == 'x' {
		return false
	}
	return start == 0 || st == start
}
