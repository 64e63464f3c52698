package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/ringbuf"
)

// Ring buffers (ringbuf, user_ringbuf): `ringbuf consume` reads records as
// they are committed, `ringbuf output` writes one, `ringbuf show` prints
// the positions and counters. `map create ... type ringbuf entries SIZE`
// creates one (no key or value size).

// ringType says the type is a ring buffer (so `map create` needs neither
// "key" nor "value").
func ringType(t maps.Type) bool { return t == maps.RingBuf || t == maps.UserRingBuf }

func ringbufCmd(g *globals) *cobra.Command {
	c := group("ringbuf", "consume, write and inspect ring buffer maps")
	c.AddCommand(ringbufConsumeCmd(g), ringbufOutputCmd(g), ringbufShowCmd(g))
	return c
}

// recordJSON is one line of `ringbuf consume -j`: the bytes as bpftool
// prints map values.
type recordJSON struct {
	Size int      `json:"size"`
	Data []string `json:"data"`
}

func ringbufConsumeCmd(g *globals) *cobra.Command {
	var count int
	c := &cobra.Command{
		Use:   "consume REGION:NAME [--count N]",
		Short: "print a ring buffer's records as they are committed",
		Long: `Become the ring buffer's consumer and print each record as it is committed, as
hex bytes (with -j: one JSON object per line, {"size": N, "data": ["0x..", ...]}),
until interrupted or --count records. The command sleeps while the ring is empty
and is woken by the producers. Only one consumer at a time: another live one
makes this fail with "busy"; a dead one is taken over where it stopped.

A user_ringbuf is drained instead (what bpf_user_ringbuf_drain does): the
records committed so far are printed, then the command ends.`,
		Example: "  userbpf ringbuf consume demo:events\n  userbpf -j ringbuf consume demo:events --count 10",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if count < 0 {
				return usageError{fmt.Errorf("--count %d: want a number of records, 0 for no limit", count)}
			}
			r, m, err := openMap(args[0], 0)
			if err != nil {
				return err
			}
			defer r.Close()
			show := func(b []byte) {
				if g.json || g.pretty {
					printJSON(g, recordJSON{Size: len(b), Data: jsonBytes(b)})
					return
				}
				fmt.Println(hexBytes(b))
			}
			if m.Type() == maps.UserRingBuf {
				return drainAll(m, count, show)
			}
			rd, err := ringbuf.NewReader(m)
			if err != nil {
				return err
			}
			defer rd.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			var rec ringbuf.Record
			for n := 0; count == 0 || n < count; n++ {
				if err := rd.ReadInto(ctx, &rec); err != nil {
					if ctx.Err() != nil {
						return nil // interrupted: a normal end
					}
					return err
				}
				show(rec.RawSample)
			}
			return nil
		},
	}
	c.Flags().IntVar(&count, "count", 0, "stop after N records (0: until interrupted)")
	return c
}

// drainAll prints the committed records of a user ring buffer, at most
// count (0: all).
func drainAll(m *maps.Map, count int, show func([]byte)) error {
	g, err := ringbuf.Open(m)
	if err != nil {
		return err
	}
	defer g.Close()
	n := 0
	for count == 0 || n < count {
		got, err := g.Drain(func(s []byte) bool {
			show(s)
			n++
			return count > 0 && n >= count
		}, 0)
		if err != nil {
			return err
		}
		if got == 0 {
			return nil
		}
	}
	return nil
}

func ringbufOutputCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "output REGION:NAME data BYTES [no_wakeup|force_wakeup]",
		Short: "write one record into a ring buffer",
		Long: `Write one record, as bpf_ringbuf_output does (into a user_ringbuf: as a
user-space producer). BYTES are bytes as for map values: each word one byte
(decimal, 0x hex), or after the word "hex" hex words of any length ("hex 0102 03").
A full ring is an error (nothing is overwritten).`,
		Example: "  userbpf ringbuf output demo:events data 1 2 3 4\n  userbpf ringbuf output demo:events data hex deadbeef force_wakeup",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			w := &words{args: args[1:]}
			if !w.more() || w.next() != "data" {
				return usageError{fmt.Errorf("expected: data BYTES")}
			}
			data, flags, err := recordArgs(w)
			if err != nil {
				return err
			}
			r, m, err := openMap(args[0], 0)
			if err != nil {
				return err
			}
			defer r.Close()
			ring, err := ringbuf.Open(m)
			if err != nil {
				return err
			}
			defer ring.Close()
			if err := ring.Output(data, flags); err != nil {
				return err
			}
			emit(g, map[string]int{"size": len(data)}, func() {})
			return nil
		},
	}
}

// recordArgs reads a record's bytes (as words.bytes reads values, any
// number of them) and an optional wake-up flag at the end.
func recordArgs(w *words) ([]byte, uint64, error) {
	var flags uint64
	if n := len(w.args); n > 0 {
		switch w.args[n-1] {
		case "no_wakeup":
			flags = ringbuf.NoWakeup
		case "force_wakeup":
			flags = ringbuf.ForceWakeup
		}
		if flags != 0 {
			w.args = w.args[:n-1]
		}
	}
	hex := w.more() && w.peek() == "hex"
	if hex {
		w.next()
	}
	var out []byte
	for w.more() {
		s := w.next()
		if !hex {
			b, err := strconv.ParseUint(s, 0, 8)
			if err != nil {
				return nil, 0, usageError{fmt.Errorf("data: %q is not a byte (0-255, or 0x00-0xff)", s)}
			}
			out = append(out, byte(b))
			continue
		}
		s = strings.TrimPrefix(s, "0x")
		if len(s)%2 == 1 {
			s = "0" + s
		}
		for i := 0; i < len(s); i += 2 {
			b, err := strconv.ParseUint(s[i:i+2], 16, 8)
			if err != nil {
				return nil, 0, usageError{fmt.Errorf("data: %q is not hex", s)}
			}
			out = append(out, byte(b))
		}
	}
	return out, flags, nil
}

// ringJSON is `ringbuf show -j`.
type ringJSON struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Size      int    `json:"size"`
	ConsPos   uint64 `json:"consumer_pos"`
	ProdPos   uint64 `json:"producer_pos"`
	Avail     uint64 `json:"avail_data"`
	Drops     uint64 `json:"drops"`
	Wakeups   uint64 `json:"wakeups"`
	Recovered uint64 `json:"busy_records_recovered"`
	Takeovers uint64 `json:"consumer_takeovers"`
	Consumer  uint32 `json:"consumer_tag,omitempty"`
	Sleepers  uint32 `json:"sleeping_consumers"`
}

func ringbufShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show REGION:NAME",
		Short:   "print a ring buffer's positions and counters",
		Example: "  userbpf ringbuf show demo:events\n  userbpf -j ringbuf show demo:events",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], maps.FlagRdOnly)
			if err != nil {
				return err
			}
			defer r.Close()
			ring, err := ringbuf.Open(m)
			if err != nil {
				return err
			}
			defer ring.Close()
			st := ring.Stats()
			j := ringJSON{Name: m.Name(), Type: m.Type().String(), Size: ring.Size(), ConsPos: st.ConsPos, ProdPos: st.ProdPos,
				Avail: st.ProdPos - st.ConsPos, Drops: st.Drops, Wakeups: st.Wakeups, Recovered: st.Recovered,
				Takeovers: st.Takeovers, Consumer: st.Consumer, Sleepers: st.Sleepers}
			emit(g, j, func() {
				fmt.Printf("%s: %s  size %s\n", j.Name, j.Type, humanBytes(uint64(j.Size)))
				fmt.Printf("\tconsumer_pos %d  producer_pos %d  avail %d\n", j.ConsPos, j.ProdPos, j.Avail)
				fmt.Printf("\tdrops %d  wakeups %d  busy records recovered %d  consumer takeovers %d\n",
					j.Drops, j.Wakeups, j.Recovered, j.Takeovers)
				if j.Consumer != 0 {
					fmt.Printf("\tconsumer attached (tag %#x), %d asleep\n", j.Consumer, j.Sleepers)
				}
			})
			return nil
		},
	}
}
