package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/maps"
)

func mapCmd(g *globals) *cobra.Command {
	c := group("map", "create, inspect and change maps (bpftool grammar)")
	c.AddCommand(
		mapCreateCmd(g), mapShowCmd(g, "show"), mapShowCmd(g, "list"), mapDumpCmd(g),
		mapLookupCmd(g), mapUpdateCmd(g), mapDeleteCmd(g), mapGetNextCmd(g), mapFreezeCmd(g),
		mapPushCmd(g), mapPopCmd(g), mapPeekCmd(g),
		mapWatchCmd(g),
	)
	return c
}

// openMap attaches to REGION and opens map NAME; the caller closes the region.
func openMap(target string, flags uint32) (*userbpf.Region, *maps.Map, error) {
	region, name, err := splitTarget(target)
	if err != nil {
		return nil, nil, err
	}
	r, err := userbpf.OpenRegion(userbpf.RegionPath(region))
	if err != nil {
		return nil, nil, err
	}
	m, err := r.OpenMap(name, flags)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, m, nil
}

var flagNames = map[string]uint32{
	"no_prealloc": maps.FlagNoPrealloc, "no_common_lru": maps.FlagNoCommonLRU, "numa_node": maps.FlagNumaNode,
	"rdonly": maps.FlagRdOnly, "wronly": maps.FlagWrOnly, "zero_seed": maps.FlagZeroSeed,
	"rdonly_prog": maps.FlagRdOnlyProg, "wronly_prog": maps.FlagWrOnlyProg, "mmapable": maps.FlagMmapable,
	"inner_map": maps.FlagInnerMap,
}

// parseFlags reads map_flags: a number, or names joined by commas
// (no_prealloc,zero_seed).
func parseFlags(w *words) (uint32, error) {
	if !w.more() {
		return 0, usageError{fmt.Errorf("flags: missing value")}
	}
	s := w.peek()
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		v, err := w.uint("flags", 32)
		return uint32(v), err
	}
	w.next()
	var f uint32
	for _, n := range strings.Split(s, ",") {
		v, ok := flagNames[n]
		if !ok {
			return 0, usageError{fmt.Errorf("flags: unknown flag %q", n)}
		}
		f |= v
	}
	return f, nil
}

func mapCreateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "create REGION:NAME type TYPE key KEY_SIZE value VALUE_SIZE entries MAX_ENTRIES [flags FLAGS] [lock-offset N] [inner_map NAME] [extra N]",
		Short: "create a map",
		Long: `Create a map. TYPE is one of hash, array, percpu_hash, percpu_array, lru_hash,
lru_percpu_hash. FLAGS is a number or names joined by commas (no_prealloc,
no_common_lru, zero_seed, mmapable, rdonly_prog, ...). lock-offset N says the
value holds a struct bpf_spin_lock at byte N (allowed in lru_hash too). For
array_of_maps and hash_of_maps (value 4), inner_map NAME names the template map
in the same region; their values are map IDs ("value id N" or "value name NAME").
queue, stack and bloom_filter take no key ("key" may be left out); extra N is
map_extra (for bloom_filter: the number of hash functions, 1-15, 0 meaning 5).
lpm_trie needs flags no_prealloc, its key is 4 bytes of prefix length + data.`,
		Example: `  userbpf map create demo:counts type hash key 4 value 8 entries 1024
  userbpf map create demo:locked type lru_hash key 4 value 16 entries 4096 lock-offset 0
  userbpf map create demo:jobs type queue value 8 entries 256
  userbpf map create demo:seen type bloom_filter value 4 entries 10000 extra 3
  userbpf map create demo:routes type lpm_trie key 8 value 4 entries 1024 flags no_prealloc`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			region, name, err := splitTarget(args[0])
			if err != nil {
				return err
			}
			spec := maps.Spec{Name: name}
			innerName := ""
			seen := map[string]bool{}
			w := &words{args: args[1:]}
			for w.more() {
				kw := w.next()
				var v uint64
				switch kw {
				case "type":
					if !w.more() {
						return usageError{fmt.Errorf("type: missing map type")}
					}
					tn := w.next()
					t, ok := maps.ParseType(tn)
					if !ok {
						return usageError{fmt.Errorf("type %q: want hash, array, percpu_hash, percpu_array, lru_hash, lru_percpu_hash, lpm_trie, queue, stack or bloom_filter", tn)}
					}
					spec.Type = t
				case "key":
					v, err = w.uint(kw, 32)
					spec.KeySize = uint32(v)
				case "value":
					v, err = w.uint(kw, 32)
					spec.ValueSize = uint32(v)
				case "entries":
					v, err = w.uint(kw, 32)
					spec.MaxEntries = uint32(v)
				case "flags":
					spec.Flags, err = parseFlags(w)
				case "lock-offset":
					v, err = w.uint(kw, 32)
					spec.HasLock, spec.LockOffset = true, uint32(v)
				case "extra":
					spec.MapExtra, err = w.uint(kw, 64)
				case "inner_map":
					if !w.more() {
						return usageError{fmt.Errorf("inner_map: missing the template map's name")}
					}
					innerName = w.next()
				default:
					return usageError{fmt.Errorf("unknown keyword %q", kw)}
				}
				if err != nil {
					return err
				}
				seen[kw] = true
			}
			for _, kw := range []string{"type", "key", "value", "entries"} {
				if !seen[kw] && !(kw == "key" && keylessType(spec.Type)) && !((kw == "key" || kw == "value") && ringType(spec.Type)) {
					return usageError{fmt.Errorf("map create: %q is required", kw)}
				}
			}
			r, err := userbpf.OpenRegion(userbpf.RegionPath(region))
			if err != nil {
				return err
			}
			defer r.Close()
			if innerName != "" {
				if spec.InnerMap, err = r.OpenMap(innerName, maps.FlagRdOnly); err != nil {
					return err
				}
			}
			m, err := r.CreateMap(spec)
			if err != nil {
				return err
			}
			emit(g, mapInfo(m), func() { printMapInfo(m) })
			return nil
		},
	}
}

// mapJSON is `map show -j`, named as bpftool names the fields.
type mapJSON struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Flags      uint32 `json:"flags"`
	BytesKey   uint32 `json:"bytes_key"`
	BytesValue uint32 `json:"bytes_value"`
	MaxEntries uint32 `json:"max_entries"`
	Frozen     int    `json:"frozen"`
	LockOffset *int   `json:"lock_offset,omitempty"`
}

func mapInfo(m *maps.Map) mapJSON {
	j := mapJSON{Name: m.Name(), Type: m.Type().String(), Flags: m.Flags(), BytesKey: m.KeySize(),
		BytesValue: m.ValueSize(), MaxEntries: m.MaxEntries()}
	if m.Frozen() {
		j.Frozen = 1
	}
	if ok, off := m.HasLock(); ok {
		o := int(off)
		j.LockOffset = &o
	}
	return j
}

func printMapInfo(m *maps.Map) {
	j := mapInfo(m)
	fmt.Printf("%s: %s  flags 0x%x\n", j.Name, j.Type, j.Flags)
	fmt.Printf("\tkey %dB  value %dB  max_entries %d", j.BytesKey, j.BytesValue, j.MaxEntries)
	if j.LockOffset != nil {
		fmt.Printf("  bpf_spin_lock at %d", *j.LockOffset)
	}
	if j.Frozen != 0 {
		fmt.Printf("  frozen")
	}
	fmt.Println()
}

func mapShowCmd(g *globals, verb string) *cobra.Command {
	return &cobra.Command{
		Use:     verb + " REGION[:NAME]",
		Short:   "show one map, or every map of a region",
		Example: "  userbpf map " + verb + " demo\n  userbpf -j map " + verb + " demo:counts",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			region, name, found := strings.Cut(args[0], ":")
			if found && name != "" {
				r, m, err := openMap(args[0], maps.FlagRdOnly)
				if err != nil {
					return err
				}
				defer r.Close()
				emit(g, mapInfo(m), func() { printMapInfo(m) })
				return nil
			}
			r, err := userbpf.OpenRegion(userbpf.RegionPath(region))
			if err != nil {
				return err
			}
			defer r.Close()
			all := []mapJSON{}
			var ms []*maps.Map
			for _, o := range r.Shared().Objects() {
				if o.Kind != maps.KindMap {
					continue
				}
				m, err := r.OpenMap(o.Name, maps.FlagRdOnly)
				if err != nil {
					return err
				}
				ms = append(ms, m)
				all = append(all, mapInfo(m))
			}
			emit(g, all, func() {
				for _, m := range ms {
					printMapInfo(m)
				}
			})
			return nil
		},
	}
}

// elemJSON is one element of `map dump -j`/`lookup -j`, as bpftool prints it.
type elemJSON struct {
	Key       []string        `json:"key"`
	Value     []string        `json:"value,omitempty"`
	Values    []cpuValJSON    `json:"values,omitempty"`
	Formatted json.RawMessage `json:"formatted,omitempty"`
}

type cpuValJSON struct {
	CPU   int      `json:"cpu"`
	Value []string `json:"value"`
}

func elemOut(m *maps.Map, key, value []byte) elemJSON {
	e := elemJSON{Key: jsonBytes(key), Formatted: formatted(m, key, value)}
	if !perCPU(m) {
		e.Value = jsonBytes(value)
		return e
	}
	stride := (int(m.ValueSize()) + 7) &^ 7
	for c := 0; c < m.NumCPU(); c++ {
		e.Values = append(e.Values, cpuValJSON{CPU: c, Value: jsonBytes(value[c*stride : c*stride+int(m.ValueSize())])})
	}
	return e
}

func perCPU(m *maps.Map) bool {
	t := m.Type()
	return t == maps.PerCPUArray || t == maps.PerCPUHash || t == maps.LRUPerCPUHash
}

func printElem(m *maps.Map, key, value []byte) {
	if f := formatted(m, key, value); f != nil {
		defer fmt.Printf("\tformatted: %s\n", f)
	}
	if !perCPU(m) {
		fmt.Printf("key: %s  value: %s\n", hexBytes(key), hexBytes(value))
		return
	}
	fmt.Printf("key:\n%s\n", hexBytes(key))
	stride := (int(m.ValueSize()) + 7) &^ 7
	for c := 0; c < m.NumCPU(); c++ {
		fmt.Printf("value (CPU %02d): %s\n", c, hexBytes(value[c*stride:c*stride+int(m.ValueSize())]))
	}
}

func mapDumpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "dump REGION:NAME",
		Short:   "print every element (per-CPU maps: every CPU's value; queues and stacks: in pop order, without popping)",
		Example: "  userbpf map dump demo:counts\n  userbpf -p map dump demo:counts",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], maps.FlagRdOnly)
			if err != nil {
				return err
			}
			defer r.Close()
			if isKeyless(m) {
				return dumpKeyless(g, m)
			}
			var cur []byte
			next := make([]byte, m.KeySize())
			val := make([]byte, m.UserValueSize())
			out := []elemJSON{}
			n := 0
			for {
				if err := m.NextKey(cur, next); err != nil {
					if errors.Is(err, maps.ErrKeyNotExist) {
						break
					}
					return err
				}
				cur = append(cur[:0], next...)
				if err := m.Lookup(cur, val, 0); err != nil {
					if errors.Is(err, maps.ErrKeyNotExist) {
						continue // deleted meanwhile
					}
					return err
				}
				n++
				if g.json || g.pretty {
					out = append(out, elemOut(m, cur, val))
				} else {
					printElem(m, cur, val)
				}
			}
			emit(g, out, func() { fmt.Printf("Found %d element%s\n", n, map[bool]string{true: "", false: "s"}[n == 1]) })
			return nil
		},
	}
}

func mapLookupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "lookup REGION:NAME key BYTES",
		Short:   "print one element",
		Example: "  userbpf map lookup demo:counts key 1 0 0 0\n  userbpf map lookup demo:counts key hex 01 00 00 00",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], maps.FlagRdOnly)
			if err != nil {
				return err
			}
			defer r.Close()
			w := &words{args: args[1:]}
			key, err := keyArg(w, m)
			if err != nil {
				return err
			}
			flags := uint64(0)
			if w.more() && w.peek() == "lock" {
				w.next()
				flags = maps.FlagLock
			}
			if err := noMore(w); err != nil {
				return err
			}
			val := make([]byte, m.UserValueSize())
			if err := m.Lookup(key, val, flags); err != nil {
				return err
			}
			emit(g, elemOut(m, key, val), func() { printElem(m, key, val) })
			return nil
		},
	}
}

// keyArg reads "key BYTES".
func keyArg(w *words, m *maps.Map) ([]byte, error) {
	if !w.more() || w.next() != "key" {
		return nil, usageError{fmt.Errorf("expected: key BYTES")}
	}
	return w.bytes("key", int(m.KeySize()))
}

func noMore(w *words) error {
	if w.more() {
		return usageError{fmt.Errorf("unexpected %q", w.peek())}
	}
	return nil
}

func mapUpdateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "update REGION:NAME key BYTES value BYTES [any|exist|noexist] [lock]",
		Short: "create or change one element",
		Long: `Create or change one element. For per-CPU maps the value is one CPU's value,
stored on every CPU. "lock" copies the value under its bpf_spin_lock (BPF_F_LOCK).`,
		Example: "  userbpf map update demo:counts key 1 0 0 0 value 42 0 0 0 0 0 0 0 noexist",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], 0)
			if err != nil {
				return err
			}
			defer r.Close()
			w := &words{args: args[1:]}
			key, err := keyArg(w, m)
			if err != nil {
				return err
			}
			if !w.more() || w.next() != "value" {
				return usageError{fmt.Errorf("expected: value BYTES")}
			}
			one, err := innerValue(r, w)
			if one == nil && err == nil {
				one, err = w.bytes("value", int(m.ValueSize()))
			}
			if err != nil {
				return err
			}
			val := one
			if perCPU(m) {
				stride := (int(m.ValueSize()) + 7) &^ 7
				val = make([]byte, m.UserValueSize())
				for c := 0; c < m.NumCPU(); c++ {
					copy(val[c*stride:], one)
				}
			}
			flags := uint64(maps.UpdateAny)
			for w.more() {
				switch kw := w.next(); kw {
				case "any":
					flags = flags&maps.FlagLock | maps.UpdateAny
				case "noexist":
					flags = flags&maps.FlagLock | maps.UpdateNoExist
				case "exist":
					flags = flags&maps.FlagLock | maps.UpdateExist
				case "lock":
					flags |= maps.FlagLock
				default:
					return usageError{fmt.Errorf("unexpected %q (want any, exist, noexist or lock)", kw)}
				}
			}
			if err := m.Update(key, val, flags); err != nil {
				return err
			}
			emit(g, nil, func() {})
			return nil
		},
	}
}

func mapDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete REGION:NAME key BYTES",
		Short:   "delete one element",
		Example: "  userbpf map delete demo:counts key 1 0 0 0",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], 0)
			if err != nil {
				return err
			}
			defer r.Close()
			w := &words{args: args[1:]}
			key, err := keyArg(w, m)
			if err == nil {
				err = noMore(w)
			}
			if err == nil {
				err = m.Delete(key)
			}
			if err != nil {
				return err
			}
			emit(g, nil, func() {})
			return nil
		},
	}
}

func mapGetNextCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "getnext REGION:NAME [key BYTES]",
		Short:   "print the key after KEY (without a key: the first key)",
		Example: "  userbpf map getnext demo:counts key 1 0 0 0",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], maps.FlagRdOnly)
			if err != nil {
				return err
			}
			defer r.Close()
			w := &words{args: args[1:]}
			var key []byte
			if w.more() {
				if key, err = keyArg(w, m); err != nil {
					return err
				}
			}
			if err := noMore(w); err != nil {
				return err
			}
			next := make([]byte, m.KeySize())
			if err := m.NextKey(key, next); err != nil {
				return err
			}
			out := map[string]any{"next_key": jsonBytes(next)}
			if key != nil {
				out["key"] = jsonBytes(key)
			}
			emit(g, out, func() {
				if key == nil {
					fmt.Println("key: None")
				} else {
					fmt.Printf("key:\n%s\n", hexBytes(key))
				}
				fmt.Printf("next key:\n%s\n", hexBytes(next))
			})
			return nil
		},
	}
}

func mapFreezeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "freeze REGION:NAME",
		Short:   "make a map read-only for user space, for good",
		Example: "  userbpf map freeze demo:config",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], 0)
			if err != nil {
				return err
			}
			defer r.Close()
			if err := m.Freeze(); err != nil {
				return err
			}
			emit(g, nil, func() {})
			return nil
		},
	}
}

// innerValue reads a map-in-map value given as "id N" or "name NAME"
// (bpftool takes an inner map the same way); nil if the value is bytes.
func innerValue(r *userbpf.Region, w *words) ([]byte, error) {
	if !w.more() || w.peek() != "id" && w.peek() != "name" {
		return nil, nil
	}
	var id uint32
	switch w.next() {
	case "id":
		v, err := w.uint("value id", 32)
		if err != nil {
			return nil, err
		}
		id = uint32(v)
	default:
		if !w.more() {
			return nil, usageError{fmt.Errorf("value name: missing the inner map's name")}
		}
		inner, err := r.OpenMap(w.next(), maps.FlagRdOnly)
		if err != nil {
			return nil, err
		}
		id = inner.ID()
	}
	return binary.NativeEndian.AppendUint32(nil, id), nil
}

// formatted renders an element with the key and value types the map was
// created with (from the object's BTF), as bpftool's "formatted": nil if
// the map has none.
func formatted(m *maps.Map, key, value []byte) json.RawMessage {
	f, ok := m.Format()
	if !ok || f.Value == nil {
		return nil
	}
	var sb strings.Builder
	sb.WriteString(`{"key":`)
	if f.Key != nil {
		sb.WriteString(f.Key.Render(key))
	} else {
		sb.WriteString("null")
	}
	if !perCPU(m) {
		sb.WriteString(`,"value":`)
		sb.WriteString(f.Value.Render(value))
	} else {
		sb.WriteString(`,"values":[`)
		stride := (int(m.ValueSize()) + 7) &^ 7
		for c := 0; c < m.NumCPU(); c++ {
			if c > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"cpu":%d,"value":%s}`, c, f.Value.Render(value[c*stride:]))
		}
		sb.WriteByte(']')
	}
	sb.WriteByte('}')
	return json.RawMessage(sb.String())
}
