package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf/conformance"
)

func conformanceCmd(g *globals) *cobra.Command {
	var o conformance.Options
	var verbose bool
	c := &cobra.Command{
		Use:   "conformance [--seed N] [--ops N] [--match S] [--json]",
		Short: "run the same map operations on kernel maps and on userbpf maps and compare",
		Long: `Run the differential conformance suite: every case creates a kernel map (bpf(2))
and a userbpf map with the same attributes, applies the same operations to both and
compares errno, values and key sets (and iteration order where the kernel's is
deterministic). Needs root and bpf(2); without them it says so and exits 0.
Exits 1 if any case failed.`,
		Example: "  userbpf conformance\n  userbpf conformance --seed 42 --match random/HASH -j",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			rep := conformance.Run(o)
			if g.json || g.pretty {
				printJSON(g, rep)
			} else {
				cases := rep.FailedCases()
				if verbose {
					cases = rep.Cases
				}
				for _, cr := range cases {
					state := "ok"
					if !cr.Pass {
						state = "FAIL"
					}
					fmt.Printf("%-4s %s\n", state, cr.Name)
					for _, d := range cr.Diffs {
						fmt.Printf("\t%s\n", d)
					}
				}
				fmt.Printf("%s (kernel %s, %d CPUs, seed %d, %s)\n", rep.Summary(), rep.Kernel, rep.NumCPU, rep.Seed, rep.Duration.Round(1e6))
			}
			if rep.Failed > 0 {
				os.Exit(1)
			}
			return nil
		},
	}
	c.Flags().Int64Var(&o.Seed, "seed", 0, "seed of the random sequences (0: from the clock; printed for replay)")
	c.Flags().IntVar(&o.RandomOps, "ops", 0, "operations per random sequence (default 3000)")
	c.Flags().StringVar(&o.Match, "match", "", "run only cases whose name contains this")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing cases too")
	return c
}
