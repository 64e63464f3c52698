package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// parseSize reads a byte count: a number with an optional K, M, G or T
// suffix (powers of 1024), e.g. 512M.
func parseSize(s string) (uint64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := uint64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || v == 0 {
		return 0, usageError{fmt.Errorf("size %q: want a positive number of bytes, optionally with K, M, G or T", s)}
	}
	if v > ^uint64(0)/mult {
		return 0, usageError{fmt.Errorf("size %q is too large", s)}
	}
	return v * mult, nil
}

// parseMode reads an octal file mode such as 0600 or 660.
func parseMode(s string) (os.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v == 0 || v > 0o777 {
		return 0, usageError{fmt.Errorf("mode %q: want octal permission bits such as 0600", s)}
	}
	return os.FileMode(v), nil
}
