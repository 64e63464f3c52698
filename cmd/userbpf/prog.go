package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/loader"
	"github.com/userbpf/userbpf/programs"
	"github.com/userbpf/userbpf/ringbuf"
)

func progCmd(g *globals) *cobra.Command {
	c := group("prog", "load, show, run and disassemble programs (bpftool grammar)")
	c.AddCommand(progLoadCmd(g), progShowCmd(g), progRunCmd(g), progDumpCmd(g), progTracelogCmd(g),
		progSetCmd(g), progEnableCmd(g))
	return c
}

func progLoadCmd(g *globals) *cobra.Command {
	var log bool
	c := &cobra.Command{
		Use:   "load OBJ REGION [abort-limit N]",
		Short: "load an eBPF object (clang -target bpf) into a region",
		Long: `Load an object's maps and programs into a region. Maps are created, or reused
when the region already has a compatible map of the same name; programs are
stored in the region, so any attached process can run them by name. Every
program is verified first; a program the verifier rejects is not loaded,
and the error names the instruction, its source line and the problem.
--log prints the verifier's full trace (every instruction with the
registers after it) to stderr. abort-limit N disables each program after
N aborted runs (see prog set).`,
		Example: "  userbpf prog load testdata/calls.o demo abort-limit 100\n  userbpf prog load --log testdata/verifier/bad_null.o demo",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			var limit uint64
			setLimit := false
			w := &words{args: args[2:]}
			for w.more() {
				switch kw := w.next(); kw {
				case "abort-limit":
					var err error
					if limit, err = w.uint(kw, 32); err != nil {
						return err
					}
					setLimit = true
				default:
					return usageError{fmt.Errorf("unknown keyword %q (want abort-limit)", kw)}
				}
			}
			r, err := userbpf.OpenRegion(userbpf.RegionPath(args[1]))
			if err != nil {
				return err
			}
			defer r.Close()
			opts := &userbpf.CollectionOptions{}
			if log {
				opts.VerifierLog = os.Stderr
			}
			c, err := userbpf.LoadCollectionWithOptions(r, args[0], opts)
			if err != nil {
				return err
			}
			var progs, ms []string
			for n, p := range c.Programs {
				progs = append(progs, n)
				if setLimit {
					p.SetAbortLimit(uint32(limit))
				}
			}
			for _, m := range c.Maps {
				ms = append(ms, m.Name())
			}
			sort.Strings(progs)
			sort.Strings(ms)
			emit(g, map[string]any{"programs": progs, "maps": ms}, func() {
				fmt.Printf("loaded %d programs (%v) and %d maps (%v) into %s\n", len(progs), progs, len(ms), ms, r.Shared().Path())
			})
			return nil
		},
	}
	c.Flags().BoolVar(&log, "log", false, "print the verifier's full trace to stderr")
	return c
}

type progJSON struct {
	Name       string         `json:"name"`
	Type       uint32         `json:"type"`
	Insns      int            `json:"insns"`
	Maps       []string       `json:"map_names"`
	Runs       uint64         `json:"run_cnt"`
	Faults     uint64         `json:"fault_cnt"`
	LastFault  *lastFaultJSON `json:"last_fault,omitempty"`
	AbortLimit uint32         `json:"abort_limit"`
	Disabled   bool           `json:"disabled"`
}

type lastFaultJSON struct {
	Kind string `json:"kind"`
	Insn int    `json:"insn"` // -1: no single instruction
}

func progInfo(name string, p *programs.Program) progJSON {
	st := p.Stats()
	j := progJSON{Name: name, Type: p.Type(), Insns: len(p.VM().Insns), Maps: []string{},
		Runs: st.Runs, Faults: st.Faults, AbortLimit: st.AbortLimit, Disabled: st.Disabled}
	for _, ref := range p.VM().Maps {
		if m, ok := ref.Handle.(interface{ Name() string }); ok {
			j.Maps = append(j.Maps, m.Name())
		}
	}
	if st.LastFault != programs.FaultNone {
		j.LastFault = &lastFaultJSON{Kind: st.LastFault.String(), Insn: st.LastPC}
	}
	return j
}

func printProgInfo(p progJSON) {
	fmt.Printf("%s: type %d  insns %d  maps %v\n", p.Name, p.Type, p.Insns, p.Maps)
	fmt.Printf("\truns %d  faults %d", p.Runs, p.Faults)
	if f := p.LastFault; f != nil {
		fmt.Printf("  last fault %s", f.Kind)
		if f.Insn >= 0 {
			fmt.Printf(" at insn %d", f.Insn)
		}
	}
	if p.AbortLimit != 0 {
		fmt.Printf("  abort-limit %d", p.AbortLimit)
	}
	if p.Disabled {
		fmt.Print("  DISABLED")
	}
	fmt.Println()
}

func progShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show REGION",
		Short: "list the programs loaded into a region, with their run and fault counts",
		Long: `List the programs of a region: type, size, maps, and the counters every
process updates: runs, faults (aborted runs since the program was loaded or
last enabled), the last fault's kind and instruction, the abort limit and
whether the program is disabled.`,
		Example: "  userbpf prog show demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := userbpf.OpenRegion(userbpf.RegionPath(args[0]))
			if err != nil {
				return err
			}
			defer r.Close()
			out := []progJSON{}
			for _, n := range r.Programs() {
				p, err := r.Program(n)
				if err != nil {
					return err
				}
				out = append(out, progInfo(n, p))
			}
			emit(g, out, func() {
				for _, p := range out {
					printProgInfo(p)
				}
			})
			return nil
		},
	}
}

func progRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run REGION:PROG [data_in FILE] [ctx_in FILE] [repeat N]",
		Short: "run a program and print its return value and average duration",
		Long: `Run a program as bpftool prog run does. The program's context (R1) is the
contents of ctx_in, or of data_in if only that is given, or zero bytes the
size of the program type's context (192 for struct __sk_buff, 24 for struct
xdp_md, 64 otherwise).
Prints "Return value: X, duration (average): Yns".`,
		Example: "  userbpf prog run demo:entry repeat 1000",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			region, name, err := splitTarget(args[0])
			if err != nil {
				return err
			}
			var ctx []byte
			repeat := uint64(1)
			w := &words{args: args[1:]}
			for w.more() {
				switch kw := w.next(); kw {
				case "data_in", "ctx_in":
					if !w.more() {
						return usageError{fmt.Errorf("%s: missing file", kw)}
					}
					b, err := os.ReadFile(w.next())
					if err != nil {
						return err
					}
					if kw == "ctx_in" || ctx == nil {
						ctx = b
					}
				case "repeat":
					if repeat, err = w.uint(kw, 32); err != nil {
						return err
					}
					if repeat == 0 {
						repeat = 1
					}
				default:
					return usageError{fmt.Errorf("unknown keyword %q (want data_in, ctx_in or repeat)", kw)}
				}
			}
			r, err := userbpf.OpenRegion(userbpf.RegionPath(region))
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.Program(name)
			if err != nil {
				return err
			}
			if ctx == nil {
				ctx = make([]byte, defaultCtxSize(p.Type()))
			}
			start := time.Now()
			r0, err := p.RunRepeat(ctx, int(repeat)) // one CPU lease for the loop, as BPF_PROG_TEST_RUN
			if err != nil {
				return err
			}
			avg := time.Since(start).Nanoseconds() / int64(repeat)
			emit(g, map[string]any{"retval": r0, "duration": avg}, func() {
				fmt.Printf("Return value: %d, duration (average): %dns\n", r0, avg)
			})
			return nil
		},
	}
}

func progDumpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "dump REGION:PROG",
		Short:   "disassemble a program",
		Example: "  userbpf prog dump demo:entry",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			region, name, err := splitTarget(args[0])
			if err != nil {
				return err
			}
			r, err := userbpf.OpenRegion(userbpf.RegionPath(region))
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.Program(name)
			if err != nil {
				return err
			}
			text, err := loader.Disassemble(p.VM().Insns)
			if err != nil {
				return err
			}
			emit(g, map[string]any{"name": name, "insns": text}, func() { fmt.Print(text) })
			return nil
		},
	}
}

func progTracelogCmd(g *globals) *cobra.Command {
	var count int
	c := &cobra.Command{
		Use:   "tracelog REGION [--count N]",
		Short: "print bpf_trace_printk messages of the region's programs as they come",
		Long: `Print the messages programs write with bpf_trace_printk (bpf_printk), from any
process, as bpftool prog tracelog prints the kernel's trace_pipe. Sleeps while
there is nothing to print; stops on interrupt or after --count messages.`,
		Example: "  userbpf prog tracelog demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := userbpf.OpenRegion(userbpf.RegionPath(args[0]))
			if err != nil {
				return err
			}
			defer r.Close()
			ring, err := programs.TraceRing(r.Shared(), r.RCU())
			if err != nil {
				return err
			}
			rd, err := ringbuf.NewReader(ring.Map())
			if err != nil {
				return err
			}
			defer rd.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			for n := 0; count == 0 || n < count; n++ {
				rec, err := rd.Read(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				msg := strings.TrimRight(string(rec.RawSample), "\x00\n")
				emit(g, map[string]string{"message": msg}, func() { fmt.Println(msg) })
			}
			return nil
		},
	}
	c.Flags().IntVar(&count, "count", 0, "stop after N messages (0: until interrupted)")
	return c
}

// openProg opens REGION:PROG.
func openProg(target string) (*userbpf.Region, *programs.Program, error) {
	region, name, err := splitTarget(target)
	if err != nil {
		return nil, nil, err
	}
	r, err := userbpf.OpenRegion(userbpf.RegionPath(region))
	if err != nil {
		return nil, nil, err
	}
	p, err := r.Program(name)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, p, nil
}

func progSetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set REGION:PROG abort-limit N",
		Short: "set a program's abort limit (0: none)",
		Long: `Set the number of aborted runs (faults) after which a program is disabled for
every process; 0 removes the limit. Faults count from when the program was
loaded or last enabled; a program already past the new limit is disabled by
its next fault.`,
		Example: "  userbpf prog set demo:entry abort-limit 10",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			w := &words{args: args[1:]}
			if !w.more() {
				return usageError{fmt.Errorf("nothing to set (want abort-limit N)")}
			}
			var limit uint64
			for w.more() {
				switch kw := w.next(); kw {
				case "abort-limit":
					var err error
					if limit, err = w.uint(kw, 32); err != nil {
						return err
					}
				default:
					return usageError{fmt.Errorf("unknown keyword %q (want abort-limit)", kw)}
				}
			}
			r, p, err := openProg(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			p.SetAbortLimit(uint32(limit))
			j := progInfo(p.Name(), p)
			emit(g, j, func() { printProgInfo(j) })
			return nil
		},
	}
}

func progEnableCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "enable REGION:PROG",
		Short:   "re-enable a program disabled by its abort limit, resetting its fault count",
		Example: "  userbpf prog enable demo:entry",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, p, err := openProg(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			p.Enable()
			j := progInfo(p.Name(), p)
			emit(g, j, func() { printProgInfo(j) })
			return nil
		},
	}
}

// defaultCtxSize is the size of the context struct of a program type
// (enum bpf_prog_type): what a program may read from R1 when prog run is
// given no ctx_in.
func defaultCtxSize(typ uint32) int {
	switch typ {
	case 1, 3, 4, 8, 10, 11, 12, 14, 19, 22: // socket filter, tc cls/act, cgroup skb, lwt in/out/xmit, sk_skb, lwt seg6local, flow dissector
		return 192 // struct __sk_buff
	case 6: // XDP
		return 24 // struct xdp_md
	}
	return 64
}
