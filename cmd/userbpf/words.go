package main

import (
	"fmt"
	"strconv"
	"strings"
)

// words walks a bpftool-style argument list: KEYWORD VALUE... pairs.
type words struct{ args []string }

func (w *words) more() bool   { return len(w.args) > 0 }
func (w *words) peek() string { return w.args[0] }
func (w *words) next() string { s := w.args[0]; w.args = w.args[1:]; return s }

// uint reads the number after keyword kw (decimal, 0x hex or 0 octal).
func (w *words) uint(kw string, bits int) (uint64, error) {
	if !w.more() {
		return 0, usageError{fmt.Errorf("%s: missing number", kw)}
	}
	s := w.next()
	v, err := strconv.ParseUint(s, 0, bits)
	if err != nil {
		return 0, usageError{fmt.Errorf("%s %q: want a number below 2^%d", kw, s, bits)}
	}
	return v, nil
}

// mapKeywords end a byte list.
var mapKeywords = map[string]bool{
	"key": true, "value": true, "any": true, "exist": true, "noexist": true, "lock": true,
	"type": true, "entries": true, "flags": true, "lock-offset": true, "inner_map": true,
}

// bytes reads the byte list after keyword kw, as bpftool does: each word is
// one byte (decimal, 0x hex, 0 octal), or, after the word "hex", every word
// is hex and may hold several bytes ("hex 01 00", "hex 0100"). want is the
// number of bytes expected.
func (w *words) bytes(kw string, want int) ([]byte, error) {
	var out []byte
	hex := false
	if w.more() && w.peek() == "hex" {
		w.next()
		hex = true
	}
	for w.more() && !mapKeywords[w.peek()] {
		s := w.next()
		if hex {
			s = strings.TrimPrefix(s, "0x")
			if len(s)%2 == 1 {
				s = "0" + s
			}
			for i := 0; i < len(s); i += 2 {
				b, err := strconv.ParseUint(s[i:i+2], 16, 8)
				if err != nil {
					return nil, usageError{fmt.Errorf("%s: %q is not hex", kw, s)}
				}
				out = append(out, byte(b))
			}
			continue
		}
		b, err := strconv.ParseUint(s, 0, 8)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %q is not a byte (0-255, or 0x00-0xff)", kw, s)}
		}
		out = append(out, byte(b))
	}
	if len(out) != want {
		return nil, usageError{fmt.Errorf("%s: got %d bytes, the map needs %d", kw, len(out), want)}
	}
	return out, nil
}

// hexBytes prints bytes as bpftool does: "01 00 00 00".
func hexBytes(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

// jsonBytes is bpftool's JSON form of bytes: ["0x01","0x00"].
func jsonBytes(b []byte) []string {
	out := make([]string, len(b))
	for i, c := range b {
		out[i] = fmt.Sprintf("0x%02x", c)
	}
	return out
}

// splitTarget reads REGION:NAME.
func splitTarget(s string) (region, name string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", "", usageError{fmt.Errorf("%q: want REGION:NAME", s)}
	}
	return s[:i], s[i+1:], nil
}
