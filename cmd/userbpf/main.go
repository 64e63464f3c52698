// Command userbpf manages userbpf regions and their maps with a grammar
// modelled on bpftool: `userbpf OBJECT COMMAND ARGS`, -j for JSON output,
// -p for pretty JSON.
//
// Exit codes: 0 success, 1 the command failed, 2 the command line is wrong.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// globals are the options every command shares.
type globals struct {
	json   bool
	pretty bool
}

// usageError marks errors in the command line itself (exit code 2).
type usageError struct{ error }

func main() {
	var g globals
	root := &cobra.Command{
		Use:   "userbpf",
		Short: "eBPF maps in shared memory, used by many processes at once",
		Long: `userbpf is the Linux eBPF map subsystem rebuilt in user space: maps live in a
shared-memory region that any number of processes attach to.

Regions are files; a name without a slash lives in /dev/shm/userbpf/.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&g.json, "json", "j", false, "print JSON")
	root.PersistentFlags().BoolVarP(&g.pretty, "pretty", "p", false, "print pretty JSON (implies -j)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(regionCmd(&g), mapCmd(&g), progCmd(&g), ringbufCmd(&g), conformanceCmd(&g), benchCmd(&g), benchChildCmd(), demoCmd(&g), demoWorkerCmd(), versionCmd(&g))
	if err := root.Execute(); err != nil {
		os.Exit(report(&g, err))
	}
}

// report prints err the way bpftool does (`Error: ...`, or {"error": ...}
// on stdout with -j) and returns the exit code.
func report(g *globals, err error) int {
	if g.json || g.pretty {
		printJSON(g, map[string]string{"error": err.Error()})
	} else {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return 2
	}
	return 1
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong number of arguments).
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "unknown flag", "unknown shorthand"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// group makes a command that only holds subcommands: without one it prints
// its help, with an unknown one it is a usage error.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  userbpf " + use + " --help",
		Args:    cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
			}
			return c.Help()
		},
	}
}
