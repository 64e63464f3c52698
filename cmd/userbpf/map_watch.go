package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf/maps"
)

// eventJSON is one line of `map watch -j`.
type eventJSON struct {
	Event string   `json:"event"`
	Seq   uint64   `json:"seq"`
	Key   []string `json:"key,omitempty"`
	Value []string `json:"value,omitempty"`
	Lost  uint64   `json:"lost,omitempty"`
}

func mapWatchCmd(g *globals) *cobra.Command {
	var count int
	var values bool
	c := &cobra.Command{
		Use:   "watch REGION:NAME [--count N] [--values]",
		Short: "stream a map's updates and deletes as they happen, from any process",
		Long: `Print every update, delete and eviction of a map made after the command starts,
by any process, until interrupted (or --count events). The command sleeps while
nothing changes. A watcher that falls behind prints "overflow N" (N events lost)
and goes on; dump the map to resynchronize.`,
		Example: "  userbpf map watch demo:counts --values\n  userbpf -j map watch demo:counts --count 10",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, m, err := openMap(args[0], maps.FlagRdOnly)
			if err != nil {
				return err
			}
			defer r.Close()
			w, err := m.Watch(maps.WatchOptions{Values: values})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			for n := 0; count == 0 || n < count; n++ {
				ev, err := w.Next(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil // interrupted: a normal end
					}
					return err
				}
				if g.json || g.pretty {
					e := eventJSON{Event: ev.Kind.String(), Seq: ev.Seq, Lost: ev.Lost}
					if ev.Kind != maps.EventOverflow {
						e.Key = jsonBytes(ev.Key)
						if ev.Value != nil {
							e.Value = jsonBytes(ev.Value)
						}
					}
					printJSON(g, e)
					continue
				}
				switch {
				case ev.Kind == maps.EventOverflow:
					fmt.Printf("overflow %d\n", ev.Lost)
				case ev.Value != nil:
					fmt.Printf("%s key: %s  value: %s\n", ev.Kind, hexBytes(ev.Key), hexBytes(ev.Value))
				default:
					fmt.Printf("%s key: %s\n", ev.Kind, hexBytes(ev.Key))
				}
			}
			return nil
		},
	}
	c.Flags().IntVar(&count, "count", 0, "stop after N events (0: until interrupted)")
	c.Flags().BoolVar(&values, "values", false, "print the new value with each update")
	return c
}
