package main

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbpf/userbpf"
)

func regionCmd(g *globals) *cobra.Command {
	c := group("region", "create, inspect and remove regions")
	c.AddCommand(regionCreateCmd(g), regionShowCmd(g), regionRmCmd(g))
	return c
}

func regionCreateCmd(g *globals) *cobra.Command {
	var sizeLimit, mode string
	var cpus int
	c := &cobra.Command{
		Use:   "create PATH [--size-limit B] [--cpus N] [--mode M]",
		Short: "create a region",
		Example: `  userbpf region create demo
  userbpf region create /dev/shm/userbpf/big --size-limit 8G --cpus 4 --mode 0660`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var o userbpf.RegionOptions
			var err error
			if sizeLimit != "" {
				if o.SizeLimit, err = parseSize(sizeLimit); err != nil {
					return err
				}
			}
			if mode != "" {
				if o.Mode, err = parseMode(mode); err != nil {
					return err
				}
			}
			if cpus < 0 {
				return usageError{fmt.Errorf("--cpus %d: want a positive number", cpus)}
			}
			o.CPUs = cpus
			path := userbpf.RegionPath(args[0])
			r, err := userbpf.CreateRegion(path, o)
			if err != nil {
				return err
			}
			st := r.Stats()
			r.Close()
			emit(g, map[string]any{"path": path, "size_limit": st.Limit, "cpus": st.NumCPU}, func() {
				fmt.Printf("created region %s (size limit %s, %d virtual CPUs)\n", path, humanBytes(st.Limit), st.NumCPU)
			})
			return nil
		},
	}
	c.Flags().StringVar(&sizeLimit, "size-limit", "", "largest size the region may grow to (e.g. 512M, 8G; default 64G)")
	c.Flags().IntVar(&cpus, "cpus", 0, "number of virtual CPUs (default: the machine's possible CPUs)")
	c.Flags().StringVar(&mode, "mode", "", "file mode in octal (default 0600)")
	return c
}

// regionJSON is `region show -j`.
type regionJSON struct {
	Path       string            `json:"path"`
	SizeLimit  uint64            `json:"size_limit"`
	FileSize   uint64            `json:"file_size"`
	HeapSize   uint64            `json:"heap_size"`
	Used       uint64            `json:"used"`
	Free       uint64            `json:"free"`
	CPUs       int               `json:"cpus"`
	LeasedCPUs int               `json:"cpus_leased"`
	Objects    int               `json:"objects"`
	Created    time.Time         `json:"created"`
	Processes  []processJSON     `json:"processes"`
	Counters   map[string]uint64 `json:"counters"`
}

type processJSON struct {
	PID      int       `json:"pid"`
	Alive    bool      `json:"alive"`
	Attached time.Time `json:"attached"`
}

func regionShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show PATH",
		Short:   "show a region's size, use, processes, virtual CPUs and lock recoveries",
		Example: "  userbpf region show demo\n  userbpf -p region show demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := userbpf.OpenRegion(userbpf.RegionPath(args[0]))
			if err != nil {
				return err
			}
			self := os.Getpid()
			st := r.Stats()
			r.Close()
			out := regionJSON{Path: st.Path, SizeLimit: st.Limit, FileSize: st.FileSize, HeapSize: st.HeapSize,
				Used: st.UsedBytes, Free: st.FreeBytes, CPUs: st.NumCPU, LeasedCPUs: st.LeasedCPUs,
				Objects: st.Objects, Created: st.Created, Counters: st.Counters, Processes: []processJSON{}}
			for _, p := range st.Processes {
				if p.PID != self { // this command's own short attachment is not news
					out.Processes = append(out.Processes, processJSON{PID: p.PID, Alive: p.Alive, Attached: p.Attached})
				}
			}
			emit(g, out, func() { printRegion(&out) })
			return nil
		},
	}
}

func printRegion(o *regionJSON) {
	fmt.Printf("region %s\n", o.Path)
	fmt.Printf("\tcreated %s\n", o.Created.Format(time.RFC3339))
	fmt.Printf("\tsize limit %s  file %s  heap %s  used %s  free %s\n",
		humanBytes(o.SizeLimit), humanBytes(o.FileSize), humanBytes(o.HeapSize), humanBytes(o.Used), humanBytes(o.Free))
	fmt.Printf("\tvirtual CPUs %d (%d leased)  objects %d\n", o.CPUs, o.LeasedCPUs, o.Objects)
	fmt.Printf("\tprocesses attached %d\n", len(o.Processes))
	for _, p := range o.Processes {
		state := "alive"
		if !p.Alive {
			state = "dead, not yet reaped"
		}
		fmt.Printf("\t\tpid %d  %s  since %s\n", p.PID, state, p.Attached.Format(time.RFC3339))
	}
	names := make([]string, 0, len(o.Counters))
	for k := range o.Counters {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Printf("\tcounters\n")
	for _, k := range names {
		fmt.Printf("\t\t%-22s %d\n", k, o.Counters[k])
	}
}

func regionRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm PATH [--force]",
		Short:   "remove a region file",
		Long:    "Remove a region file. A region with live processes attached is refused unless --force is given;\nattached processes keep their mapping until they detach.",
		Example: "  userbpf region rm demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := userbpf.RegionPath(args[0])
			if err := userbpf.RemoveRegion(path, force); err != nil {
				return err
			}
			emit(g, map[string]any{"removed": path}, func() { fmt.Printf("removed region %s\n", path) })
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "remove even if processes are attached")
	return c
}
