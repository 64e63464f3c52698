package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf/maps"
)

// Key-less maps (queue, stack, bloom_filter) as bpftool drives them:
// `map push|pop|peek`. `map dump` of a queue or stack lists the elements in
// pop order without popping them; a bloom filter has no elements to list
// and says so.

// keylessType says the type takes no key (so `map create` needs no "key").
func keylessType(t maps.Type) bool {
	return t == maps.Queue || t == maps.Stack || t == maps.BloomFilter
}

// valueJSON is one element of a key-less map in JSON output.
type valueJSON struct {
	Value []string `json:"value"`
	// Found is set by a bloom filter test: the value may have been pushed.
	Found *bool `json:"found,omitempty"`
}

// valueArg reads "value BYTES" (the map's value size).
func valueArg(w *words, m *maps.Map) ([]byte, error) {
	if !w.more() || w.next() != "value" {
		return nil, usageError{fmt.Errorf("expected: value BYTES")}
	}
	return w.bytes("value", int(m.ValueSize()))
}

func mapPushCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "push REGION:NAME value BYTES [any|exist]",
		Short: "push a value onto a queue or stack, or add it to a bloom filter",
		Long: `Push a value onto a queue or stack, or add it to a bloom filter (bpftool's
"map push", BPF_MAP_UPDATE_ELEM with no key). On a full queue or stack, "exist"
drops the oldest element to make room; without it the push fails.`,
		Example: "  userbpf map push demo:jobs value 1 0 0 0\n  userbpf map push demo:recent value hex 2a000000 exist",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], 0)
			if err != nil {
				return err
			}
			defer r.Close()
			w := &words{args: args[1:]}
			val, err := valueArg(w, m)
			if err != nil {
				return err
			}
			flags := uint64(maps.UpdateAny)
			for w.more() {
				switch kw := w.next(); kw {
				case "any":
					flags = maps.UpdateAny
				case "exist":
					flags = maps.UpdateExist
				default:
					return usageError{fmt.Errorf("unexpected %q (want any or exist)", kw)}
				}
			}
			if err := m.Push(val, flags); err != nil {
				return err
			}
			emit(g, nil, func() {})
			return nil
		},
	}
}

func mapPopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "pop REGION:NAME",
		Short:   "remove and print the next element of a queue (oldest) or stack (newest)",
		Example: "  userbpf map pop demo:jobs\n  userbpf -j map pop demo:jobs",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], 0)
			if err != nil {
				return err
			}
			defer r.Close()
			val := make([]byte, m.ValueSize())
			if err := m.Pop(val); err != nil {
				return err
			}
			emit(g, valueJSON{Value: jsonBytes(val)}, func() { fmt.Printf("value: %s\n", hexBytes(val)) })
			return nil
		},
	}
}

func mapPeekCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peek REGION:NAME [value BYTES]",
		Short: "print the element pop would take; for a bloom filter, test a value",
		Long: `Print the element pop would take, without removing it. For a bloom filter,
give the value to test: it prints "found" if the value may have been pushed,
and fails (exit code 1) if it certainly was not.`,
		Example: "  userbpf map peek demo:jobs\n  userbpf map peek demo:seen value 1 2 3 4",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], maps.FlagRdOnly)
			if err != nil {
				return err
			}
			defer r.Close()
			w := &words{args: args[1:]}
			bloom := m.Type() == maps.BloomFilter
			var val []byte
			switch {
			case bloom && !w.more():
				return usageError{fmt.Errorf("peek of a bloom filter: give the value to test (value BYTES)")}
			case bloom:
				if val, err = valueArg(w, m); err != nil {
					return err
				}
			default:
				val = make([]byte, m.ValueSize())
			}
			if err := noMore(w); err != nil {
				return err
			}
			if err := m.Peek(val); err != nil {
				return err
			}
			out := valueJSON{Value: jsonBytes(val)}
			if bloom {
				found := true
				out.Found = &found
			}
			emit(g, out, func() {
				if bloom {
					fmt.Printf("value: %s  found\n", hexBytes(val))
				} else {
					fmt.Printf("value: %s\n", hexBytes(val))
				}
			})
			return nil
		},
	}
}

// dumpKeyless is `map dump` of a key-less map: the elements of a queue or
// stack in pop order, without popping them.
func dumpKeyless(g *globals, m *maps.Map) error {
	if m.Type() == maps.BloomFilter {
		return fmt.Errorf("dump map %q: %w: a bloom filter has no elements to list (test a value with: map peek %s value BYTES)",
			m.Name(), maps.ErrOpNotSupported, m.Name())
	}
	vals, err := m.Contents()
	if err != nil {
		return err
	}
	out := []valueJSON{}
	for _, v := range vals {
		out = append(out, valueJSON{Value: jsonBytes(v)})
	}
	emit(g, out, func() {
		for _, v := range vals {
			fmt.Printf("value: %s\n", hexBytes(v))
		}
		fmt.Printf("Found %d element%s\n", len(vals), map[bool]string{true: "", false: "s"}[len(vals) == 1])
	})
	return nil
}

// isKeyless says whether m is a key-less map.
func isKeyless(m *maps.Map) bool { return keylessType(m.Type()) }
