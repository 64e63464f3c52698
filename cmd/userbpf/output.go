package main

import (
	"encoding/json"
	"fmt"
)

// printJSON writes v as JSON on stdout, indented with -p.
func printJSON(g *globals, v any) {
	var b []byte
	if g.pretty {
		b, _ = json.MarshalIndent(v, "", "    ")
	} else {
		b, _ = json.Marshal(v)
	}
	fmt.Println(string(b))
}

// emit prints v as JSON when asked to, and otherwise calls text.
func emit(g *globals, v any, text func()) {
	if g.json || g.pretty {
		printJSON(g, v)
		return
	}
	text()
}

// humanBytes prints a byte count the way people read it.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
