package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf/internal/bench"
)

// suiteOrder is the order `userbpf bench` without arguments runs them in.
var suiteOrder = []string{"sync", "maps", "mapinmap", "ringbuf", "vm", "graph"}

// suites are the benchmark suites `userbpf bench` knows.
var suites = map[string]func(*bench.Env) ([]bench.Result, error){
	"sync":     bench.Sync,
	"maps":     bench.Maps,
	"mapinmap": bench.MapInMap,
	"vm":       bench.VM,
	"ringbuf":  bench.Ringbuf,
	"graph":    bench.Graph,
}

func benchCmd(g *globals) *cobra.Command {
	var dir, write string
	c := &cobra.Command{
		Use:   "bench [SUITE...] [--json] [--write FILE]",
		Short: "measure userbpf against the kernel, side by side",
		Long: `Run benchmark suites. Each figure is a median; where the kernel has an
equivalent it is measured in the same run and the ratio is printed.

Suites: sync (value lock, RCU, Synchronize vs membarrier, allocator),
maps (hash and array commands against bpf(2), allocations, locked values, memory),
mapinmap (double-buffer flip + grace period against the kernel's outer-map update),
ringbuf (64-byte records between two processes and wake-up latency, against the kernel's ring buffer),
vm (interpreter ns per instruction and a clang-built program against BPF_PROG_RUN),
graph (the region's red-black tree against a Go pointer tree).
Without a suite, all of them run. --write FILE also writes the results as the
Markdown performance report (docs/performance.md is written this way).`,
		Example: "  userbpf bench sync\n  userbpf bench sync --json\n  userbpf bench --write docs/performance.md",
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = suiteOrder
			}
			env := &bench.Env{Dir: dir, Child: childCommand, Progress: func(what string) {
				if !g.json && !g.pretty {
					fmt.Fprintf(os.Stderr, "measuring %s...\n", what)
				}
			}}
			var all []bench.Result
			for _, name := range args {
				run, ok := suites[name]
				if !ok {
					return usageError{fmt.Errorf("unknown bench suite %q (have: sync, maps, mapinmap, ringbuf, vm)", name)}
				}
				res, err := run(env)
				if err != nil {
					return fmt.Errorf("bench %s: %w", name, err)
				}
				all = append(all, res...)
			}
			if write != "" {
				cmd := "userbpf bench --write " + write
				if len(args) != len(suiteOrder) {
					cmd = "userbpf bench " + strings.Join(args, " ") + " --write " + write
				}
				if err := os.WriteFile(write, []byte(bench.Markdown(all, bench.DescribeMachine(), cmd)), 0o644); err != nil {
					return err
				}
			}
			emit(g, all, func() { printResults(all) })
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", os.TempDir(), "directory for scratch regions")
	c.Flags().StringVar(&write, "write", "", "also write the results as a Markdown report to FILE")
	return c
}

func printResults(rs []bench.Result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "suite\tfigure\tuserbpf\tkernel\tratio\ttarget")
	for _, r := range rs {
		kern, ratio := "-", "-"
		if r.Kernel > 0 {
			kern = fmt.Sprintf("%.4g %s", r.Kernel, r.Unit)
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.3gx", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4g %s\t%s\t%s\t%s\n", r.Suite, r.Name, r.Value, r.Unit, kern, ratio, r.Target)
	}
	tw.Flush()
}

// childCommand re-executes this binary as a bench child.
func childCommand(args ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.Command(self, append([]string{"__bench-child"}, args...)...)
}

func benchChildCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "__bench-child",
		Hidden: true,
		RunE:   func(_ *cobra.Command, args []string) error { return bench.RunChild(args) },
	}
}
