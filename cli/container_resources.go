package cli

import (
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// resourceOptions are the limits of run, create and update.
type resourceOptions struct {
	memory, memorySwap, memoryReservation, shmSize string
	cpus, cpusetCpus, cpusetMems                   string
	cpuShares, cpuPeriod, cpuQuota, pidsLimit      int64
	blkioWeight                                    uint16
	oomKillDisable                                 bool
	readBps, writeBps, ulimits                     []string
	fs                                             *pflag.FlagSet
}

func (o *resourceOptions) addFlags(fs *pflag.FlagSet, update bool) {
	o.fs = fs
	fs.StringVarP(&o.memory, "memory", "m", "", "Memory limit")
	fs.StringVar(&o.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.StringVar(&o.memoryReservation, "memory-reservation", "", "Memory soft limit")
	fs.StringVar(&o.cpus, "cpus", "", "Number of CPUs")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable")
	if update {
		return
	}
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.StringArrayVar(&o.readBps, "device-read-bps", nil, "Limit read rate (bytes per second) from a device")
	fs.StringArrayVar(&o.writeBps, "device-write-bps", nil, "Limit write rate (bytes per second) to a device")
	fs.StringArrayVar(&o.ulimits, "ulimit", nil, "Ulimit options")
	fs.StringVar(&o.shmSize, "shm-size", "", "Size of /dev/shm")
}

// size parses a memory size flag as docker does (bytes, or with b, k,
// m, g; "-1" where allowed).
func size(flag, v string, minusOne bool) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if minusOne && v == "-1" {
		return -1, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return 0, fmt.Errorf("invalid argument %q for \"%s\" flag: %v", v, flag, err)
	}
	return n, nil
}

// nanoCPUs parses --cpus as docker's opts.NanoCPUs.
func nanoCPUs(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return 0, fmt.Errorf("invalid argument %q for \"--cpus\" flag: failed to parse %v as a rational number", v, v)
	}
	n := r.Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() {
		return 0, fmt.Errorf("invalid argument %q for \"--cpus\" flag: value is too precise", v)
	}
	return n.Num().Int64(), nil
}

func throttles(flag string, list []string) ([]*blkiodev.ThrottleDevice, error) {
	var out []*blkiodev.ThrottleDevice
	for _, v := range list {
		path, rate, ok := strings.Cut(v, ":")
		if !ok || !strings.HasPrefix(path, "/dev/") {
			return nil, fmt.Errorf("invalid argument %q for \"%s\" flag: bad format: want DEVICE:RATE such as /dev/sda:1mb", v, flag)
		}
		n, err := units.RAMInBytes(rate)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("invalid argument %q for \"%s\" flag: invalid rate %q", v, flag, rate)
		}
		out = append(out, &blkiodev.ThrottleDevice{Path: path, Rate: uint64(n)})
	}
	return out, nil
}

// apply sets the limits given on the command line in r (and ShmSize in
// host when it is given).
func (o *resourceOptions) apply(r *container.Resources, host *container.HostConfig) error {
	var err error
	if r.Memory, err = size("--memory", o.memory, false); err != nil {
		return err
	}
	if r.MemorySwap, err = size("--memory-swap", o.memorySwap, true); err != nil {
		return err
	}
	if r.MemoryReservation, err = size("--memory-reservation", o.memoryReservation, false); err != nil {
		return err
	}
	if r.NanoCPUs, err = nanoCPUs(o.cpus); err != nil {
		return err
	}
	r.CPUShares, r.CPUPeriod, r.CPUQuota = o.cpuShares, o.cpuPeriod, o.cpuQuota
	r.CpusetCpus, r.CpusetMems, r.BlkioWeight = o.cpusetCpus, o.cpusetMems, o.blkioWeight
	if o.fs.Changed("pids-limit") {
		v := o.pidsLimit
		r.PidsLimit = &v
	}
	if o.oomKillDisable {
		v := true
		r.OomKillDisable = &v
	}
	if r.BlkioDeviceReadBps, err = throttles("--device-read-bps", o.readBps); err != nil {
		return err
	}
	if r.BlkioDeviceWriteBps, err = throttles("--device-write-bps", o.writeBps); err != nil {
		return err
	}
	for _, u := range o.ulimits {
		l, err := units.ParseUlimit(u)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--ulimit\" flag: %v", u, err)
		}
		r.Ulimits = append(r.Ulimits, &container.Ulimit{Name: l.Name, Soft: l.Soft, Hard: l.Hard})
	}
	if host != nil && o.shmSize != "" {
		n, err := size("--shm-size", o.shmSize, false)
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("invalid argument %q for \"--shm-size\" flag: must be greater than 0", o.shmSize)
		}
		host.ShmSize = n
	}
	return nil
}

// resourceCmds are pause, unpause, update and stats.
func (a *app) resourceCmds() []*cobra.Command {
	pause := &cobra.Command{
		Use: "pause CONTAINER [CONTAINER...]", Short: "Pause all processes within one or more containers", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.simpleEach(http.MethodPost, "pause", nil, args)
		},
	}
	unpause := &cobra.Command{
		Use: "unpause CONTAINER [CONTAINER...]", Short: "Unpause all processes within one or more containers", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.simpleEach(http.MethodPost, "unpause", nil, args)
		},
	}
	return []*cobra.Command{pause, unpause, a.updateCmd(), a.statsCmd()}
}

func (a *app) updateCmd() *cobra.Command {
	var o resourceOptions
	var restart string
	c := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body container.UpdateConfig
			if err := o.apply(&body.Resources, nil); err != nil {
				return &statusError{code: exitFailure, msg: "moss: " + err.Error()}
			}
			if cmd.Flags().Changed("restart") {
				p, err := parseRestartPolicy(restart)
				if err != nil {
					return &statusError{code: exitFailure, msg: "moss: " + err.Error()}
				}
				body.RestartPolicy = p
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.eachArg(args, func(name string) error {
				var resp container.UpdateResponse
				if err := cl.call(http.MethodPost, "/containers/"+url.PathEscape(name)+"/update", nil, body, &resp); err != nil {
					return err
				}
				for _, w := range resp.Warnings {
					fmt.Fprintln(a.errw, "WARNING:", w)
				}
				fmt.Fprintln(a.out, name)
				return nil
			})
		},
	}
	o.addFlags(c.Flags(), true)
	c.Flags().StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return c
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{
	"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// statsRow is one line of moss stats, docker's fields.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

func statsRowOf(ref string, s *container.StatsResponse) statsRow {
	row := statsRow{Container: ref, ID: shortID(s.ID), Name: strings.TrimPrefix(s.Name, "/")}
	cpu := 0.0
	if d, sys := float64(s.CPUStats.CPUUsage.TotalUsage)-float64(s.PreCPUStats.CPUUsage.TotalUsage),
		float64(s.CPUStats.SystemUsage)-float64(s.PreCPUStats.SystemUsage); s.PreCPUStats.SystemUsage != 0 && d > 0 && sys > 0 {
		cpu = d / sys * float64(max(s.CPUStats.OnlineCPUs, 1)) * 100
	}
	row.CPUPerc = fmt.Sprintf("%.2f%%", cpu)
	mem := s.MemoryStats.Usage
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < mem {
		mem -= v
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && v < mem {
		mem -= v
	}
	row.MemUsage = units.BytesSize(float64(mem)) + " / " + units.BytesSize(float64(s.MemoryStats.Limit))
	row.MemPerc = "0.00%"
	if s.MemoryStats.Limit > 0 {
		row.MemPerc = fmt.Sprintf("%.2f%%", float64(mem)/float64(s.MemoryStats.Limit)*100)
	}
	var rx, tx uint64
	for _, n := range s.Networks {
		rx, tx = rx+n.RxBytes, tx+n.TxBytes
	}
	row.NetIO = units.HumanSizeWithPrecision(float64(rx), 3) + " / " + units.HumanSizeWithPrecision(float64(tx), 3)
	var rd, wr uint64
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			rd += e.Value
		case "write":
			wr += e.Value
		}
	}
	row.BlockIO = units.HumanSizeWithPrecision(float64(rd), 3) + " / " + units.HumanSizeWithPrecision(float64(wr), 3)
	row.PIDs = strconv.FormatUint(s.PidsStats.Current, 10)
	return row
}

func (a *app) statsCmd() *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	c := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				var list []container.Summary
				q := url.Values{}
				if all {
					q.Set("all", "1")
				}
				if err := cl.call(http.MethodGet, "/containers/json", q, nil, &list); err != nil {
					return err
				}
				for _, s := range list {
					names = append(names, s.ID)
				}
			}
			f := listFormat(format, statsTable)
			for {
				rows, err := a.statsRows(cl, names)
				if err != nil {
					return err
				}
				if !noStream {
					fmt.Fprint(a.out, "\033[2J\033[H")
				}
				if err := render(a.out, f, rows, statsHeaders); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				time.Sleep(time.Second)
			}
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	c.Flags().BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	c.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	return c
}

// statsRows asks for one sample of each container, all at once.
func (a *app) statsRows(cl *client, names []string) ([]interface{}, error) {
	rows := make([]interface{}, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s container.StatsResponse
			errs[i] = cl.call(http.MethodGet, "/containers/"+url.PathEscape(n)+"/stats", url.Values{"stream": {"false"}}, nil, &s)
			rows[i] = statsRowOf(n, &s)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return rows, nil
}
