package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf/shm"
)

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print the version and the region format it reads",
		Example: "  userbpf version\n  userbpf -j version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := "devel"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			emit(g, map[string]any{"version": v, "region_format": shm.FormatVersion, "go": runtime.Version()}, func() {
				fmt.Printf("userbpf %s (region format %d, %s)\n", v, shm.FormatVersion, runtime.Version())
			})
			return nil
		},
	}
}
