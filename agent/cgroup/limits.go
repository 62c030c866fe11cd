package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// need lists the limits of r by the controller each needs on this
// hierarchy, with the flag that set it.
func (s *Setup) need(r *specs.LinuxResources) map[string][]string {
	out := map[string][]string{}
	if r == nil {
		return out
	}
	add := func(c, flag string) { out[c] = append(out[c], flag) }
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			add("memory", "--memory")
		}
		if m.Swap != nil {
			add("memory", "--memory-swap")
		}
		if m.Reservation != nil {
			add("memory", "--memory-reservation")
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			add("memory", "--oom-kill-disable")
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			add("cpu", "--cpu-shares")
		}
		if c.Quota != nil || c.Period != nil {
			add("cpu", "--cpus/--cpu-quota/--cpu-period")
		}
		if c.Cpus != "" {
			add("cpuset", "--cpuset-cpus")
		}
		if c.Mems != "" {
			add("cpuset", "--cpuset-mems")
		}
	}
	if r.Pids != nil {
		add("pids", "--pids-limit")
	}
	if b := r.BlockIO; b != nil {
		io := "blkio"
		if s != nil && s.Version == 2 {
			io = "io"
		}
		if b.Weight != nil {
			add(io, "--blkio-weight")
		}
		if len(b.ThrottleReadBpsDevice) > 0 {
			add(io, "--device-read-bps")
		}
		if len(b.ThrottleWriteBpsDevice) > 0 {
			add(io, "--device-write-bps")
		}
	}
	return out
}

// Check compares the limits r asks for with the controllers there are.
// A missing one is an error naming the limit, the reason and the fix;
// with warn it is a warning instead and the limit is dropped from r.
func (s *Setup) Check(r *specs.LinuxResources, warn bool) ([]string, error) {
	var warnings []string
	for c, flags := range s.need(r) {
		if s.Has(c) {
			continue
		}
		why := "no cgroup controller " + c + " is delegated to the user"
		if s != nil && s.Reason != "" {
			why += ": " + s.Reason
		}
		if !warn {
			return nil, fmt.Errorf("%w: cannot apply %s: %s (or set cgroups.unsupported = \"warn\" to run without such limits)", ErrUnsupported, strings.Join(flags, ", "), why)
		}
		warnings = append(warnings, fmt.Sprintf("%s discarded: %s", strings.Join(flags, ", "), why))
		drop(r, c)
	}
	return warnings, nil
}

func drop(r *specs.LinuxResources, c string) {
	switch c {
	case "memory":
		r.Memory = nil
	case "cpu":
		if r.CPU != nil {
			r.CPU.Shares, r.CPU.Quota, r.CPU.Period = nil, nil, nil
		}
	case "cpuset":
		if r.CPU != nil {
			r.CPU.Cpus, r.CPU.Mems = "", ""
		}
	case "pids":
		r.Pids = nil
	case "blkio", "io":
		r.BlockIO = nil
	}
}

// Resources converts OCI limits into the cgroup library's.
func Resources(r *specs.LinuxResources) *cgroups.Resources {
	out := &cgroups.Resources{SkipDevices: true}
	if r == nil {
		return out
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			out.Memory = *m.Limit
		}
		if m.Swap != nil {
			out.MemorySwap = *m.Swap
		}
		if m.Reservation != nil {
			out.MemoryReservation = *m.Reservation
		}
		if m.DisableOOMKiller != nil {
			out.OomKillDisable = *m.DisableOOMKiller
		}
		out.MemorySwappiness = m.Swappiness
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			// v2's cpu.weight from the shares, as specconv converts them.
			out.CpuShares, out.CpuWeight = *c.Shares, cgroups.ConvertCPUSharesToCgroupV2Value(*c.Shares)
		}
		if c.Quota != nil {
			out.CpuQuota = *c.Quota
		}
		if c.Period != nil {
			out.CpuPeriod = *c.Period
		}
		out.CpusetCpus, out.CpusetMems = c.Cpus, c.Mems
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		out.PidsLimit = r.Pids.Limit
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil {
			out.BlkioWeight = *b.Weight
		}
		for _, d := range b.ThrottleReadBpsDevice {
			out.BlkioThrottleReadBpsDevice = append(out.BlkioThrottleReadBpsDevice, cgroups.NewThrottleDevice(d.Major, d.Minor, d.Rate))
		}
		for _, d := range b.ThrottleWriteBpsDevice {
			out.BlkioThrottleWriteBpsDevice = append(out.BlkioThrottleWriteBpsDevice, cgroups.NewThrottleDevice(d.Major, d.Minor, d.Rate))
		}
	}
	return out
}

// manager is the cgroup library's manager of existing paths.
func manager(paths map[string]string, r *cgroups.Resources) (cgroups.Manager, error) {
	if r == nil {
		r = &cgroups.Resources{SkipDevices: true}
	}
	cg := &cgroups.Cgroup{Resources: r, Rootless: true}
	if p, ok := paths[""]; ok {
		return fs2.NewManager(cg, p)
	}
	return fs.NewManager(cg, paths)
}

// Join makes the cgroups at paths, moves process pid into them and
// applies r. The shim calls it while the container's init waits in
// libcontainer's hooks, before the init drops to the container's user.
func Join(paths map[string]string, pid int, r *specs.LinuxResources) error {
	res := Resources(r)
	if p, ok := paths[""]; ok {
		// Not fs2's Apply: it would enable controllers from the file
		// system's root down, in cgroups the user does not own.
		if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("make cgroup: %w", err)
		}
		if err := cgroups.WriteCgroupProc(p, pid); err != nil {
			return fmt.Errorf("join cgroup %s: %w", p, err)
		}
		m, err := manager(paths, res)
		if err != nil {
			return err
		}
		return setErr(m.Set(res))
	}
	m, err := manager(paths, res)
	if err != nil {
		return err
	}
	if err := m.Apply(pid); err != nil {
		return fmt.Errorf("join cgroups: %w", err)
	}
	return setErr(m.Set(res))
}

func setErr(err error) error {
	if err != nil {
		return fmt.Errorf("apply cgroup limits: %w", err)
	}
	return nil
}

// Set changes the limits of existing cgroups (moss update).
func Set(paths map[string]string, r *specs.LinuxResources) error {
	res := Resources(r)
	m, err := manager(paths, res)
	if err != nil {
		return err
	}
	return setErr(m.Set(res))
}

// Stats reads the cgroups' accounting.
func Stats(paths map[string]string) (*cgroups.Stats, error) {
	m, err := manager(paths, nil)
	if err != nil {
		return nil, err
	}
	return m.GetStats()
}

// Remove deletes the cgroups at paths (empty ones; a stopped container's).
func Remove(paths map[string]string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}

// OOMKilled reports whether the kernel's OOM killer killed a process in
// the cgroups at paths (memory.events on v2, memory.oom_control on v1).
func OOMKilled(paths map[string]string) bool {
	for k, p := range paths {
		file := ""
		switch k {
		case "":
			file = filepath.Join(p, "memory.events")
		case "memory":
			file = filepath.Join(p, "memory.oom_control")
		default:
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
				return true
			}
		}
	}
	return false
}
