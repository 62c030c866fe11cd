package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	ocgroups "github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moss-containers/moss/agent/cgroup"
	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/agent/spec"
)

// cgroupSetup finds, once, the cgroups the user may use (agent/cgroup).
func (a *Agent) cgroupSetup() *cgroup.Setup {
	a.cgOnce.Do(func() {
		a.cg = cgroup.Discover(cgroup.Options{V2: a.cfg.Cgroups.V2, V1: a.cfg.Cgroups.V1})
		a.log.Info("cgroups", "setup", a.cg.Describe(), "reason", a.cg.Reason)
	})
	return a.cg
}

// checkResources validates a container's limits as Docker does and
// compares them with the delegated controllers: a limit they cannot
// apply is an error, or, with cgroups.unsupported = "warn", a warning
// and the limit left out. It returns the limits to apply.
func (a *Agent) checkResources(h *container.HostConfig) (*specs.LinuxResources, []string, error) {
	r, err := spec.Resources(h)
	if err != nil {
		return nil, nil, kindErr(errInvalid, "%s", strings.TrimPrefix(err.Error(), spec.ErrInvalid.Error()+": "))
	}
	warnings, err := a.cgroupSetup().Check(r, a.cfg.Cgroups.Warn())
	if err != nil {
		return nil, nil, kindErr(errInvalid, "%s", strings.TrimPrefix(err.Error(), cgroup.ErrUnsupported.Error()+": "))
	}
	for _, w := range warnings {
		a.log.Warn(w)
	}
	return r, warnings, nil
}

// prepareCgroups records the cgroups of container id's next start, with
// the limits of h, in its bundle for the shim (cgroup.File), and returns
// them: every container gets its own where there are delegated cgroups,
// limited or not, for stats and pause.
func (a *Agent) prepareCgroups(id string, h *container.HostConfig) (*cgroup.Spec, error) {
	cs, err := a.cgroupsOf(id, h)
	if err != nil {
		return nil, err
	}
	return cs, cgroup.Write(a.bundle(id), cs)
}

// cgroupsOf are the cgroups of container id with the limits of h, nil
// where there are none to have.
func (a *Agent) cgroupsOf(id string, h *container.HostConfig) (*cgroup.Spec, error) {
	r, _, err := a.checkResources(h)
	if err != nil {
		return nil, err
	}
	paths := a.cgroupSetup().Paths(id)
	if paths == nil {
		return nil, nil
	}
	return &cgroup.Spec{Paths: paths, Resources: r}, nil
}

// ownCgroups are the cgroups Moss made for the container (cgroup.File),
// nil when it has none: its execs are started in them.
func (a *Agent) ownCgroups(id string) map[string]string {
	if s, err := cgroup.Read(a.bundle(id)); err == nil && s != nil {
		return s.Paths
	}
	return nil
}

// removeCgroups removes the cgroups Moss made for a container that no
// longer runs: after a failed start, and after an exit, where the
// supervisor's removal may have met processes of its that were still
// being killed (the kernel refuses a cgroup with tasks).
func (a *Agent) removeCgroups(id string) {
	paths := a.ownCgroups(id)
	if len(paths) == 0 {
		return
	}
	if err := ocgroups.RemovePaths(paths); err != nil {
		a.log.Warn("remove container cgroups", "id", id, "error", err)
	}
}

// cgroupPaths are the container's cgroups: Moss's own (cgroup.File), else
// those libcontainer recorded; by controller on v1, "" on v2.
func (a *Agent) cgroupPaths(id string) map[string]string {
	if p := a.ownCgroups(id); p != nil {
		return p
	}
	return shim.LibcontainerCgroups(a.dirs.RuncRoot(), id)
}

// runningContainer looks a container up and checks it runs.
func (a *Agent) runningContainer(r *http.Request) (*Container, error) {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != "running" {
		return nil, kindErr(errConflict, "Container %s is not running", c.ID)
	}
	return c, nil
}

func (a *Agent) postPause(w http.ResponseWriter, r *http.Request) error {
	return a.setPaused(w, r, true)
}

func (a *Agent) postUnpause(w http.ResponseWriter, r *http.Request) error {
	return a.setPaused(w, r, false)
}

// setPaused freezes (pause) or thaws a running container's cgroups and
// records it.
func (a *Agent) setPaused(w http.ResponseWriter, r *http.Request, pause bool) error {
	c, err := a.runningContainer(r)
	if err != nil {
		return err
	}
	c.mu.Lock()
	paused := c.State.Paused
	c.mu.Unlock()
	switch {
	case pause && paused:
		return kindErr(errConflict, "Container %s is already paused", c.ID)
	case !pause && !paused:
		return kindErr(errConflict, "Container %s is not paused", c.ID)
	}
	action := events.ActionUnPause
	if pause {
		action = events.ActionPause
		if _, err := cgroup.Freeze(a.cgroupPaths(c.ID), 5*time.Second); err != nil {
			if errors.Is(err, cgroup.ErrNoFreezer) {
				return kindErr(errConflict, "cannot pause container %s: %v", shortID(c.ID), err)
			}
			return err
		}
	} else if err := cgroup.Thaw(a.cgroupPaths(c.ID)); err != nil {
		return err
	}
	c.mu.Lock()
	c.State.Paused = pause
	_ = a.save(c)
	c.notify()
	c.mu.Unlock()
	a.containerEvent(c, action, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postUpdate changes a container's limits (docker update), in its record
// and in its cgroups when it runs, and its restart policy.
func (a *Agent) postUpdate(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body container.UpdateConfig
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := ptrCopy(c.HostConfig)
	if body.RestartPolicy.Name != "" {
		if h.AutoRemove {
			return kindErr(errInvalid, "Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		h.RestartPolicy = body.RestartPolicy
		if err := validateRestart(h); err != nil {
			return err
		}
	}
	limits := !reflect.DeepEqual(body.Resources, container.Resources{})
	mergeResources(&h.Resources, &body.Resources)
	res, warnings, err := a.checkResources(h)
	if err != nil {
		return err
	}
	if limits && c.State.Status == "running" {
		paths := a.cgroupPaths(c.ID)
		if paths == nil {
			return kindErr(errInvalid, "cannot update container %s: it has no cgroup of its own (%s)", shortID(c.ID), a.cgroupSetup().Reason)
		}
		if err := cgroup.Set(paths, res); err != nil {
			return kindErr(errInvalid, "Cannot update container %s: %v", shortID(c.ID), err)
		}
		_ = cgroup.Write(a.bundle(c.ID), &cgroup.Spec{Paths: paths, Resources: res})
	}
	c.HostConfig = h
	if err := a.save(c); err != nil {
		return err
	}
	a.containerEventLocked(c, events.ActionUpdate, nil)
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
	return nil
}

// mergeResources sets in dst what src sets, as docker update does.
func mergeResources(dst, src *container.Resources) {
	if src.Memory != 0 {
		dst.Memory = src.Memory
	}
	if src.MemorySwap != 0 {
		dst.MemorySwap = src.MemorySwap
	}
	if src.MemoryReservation != 0 {
		dst.MemoryReservation = src.MemoryReservation
	}
	if src.NanoCPUs != 0 {
		dst.NanoCPUs, dst.CPUPeriod, dst.CPUQuota = src.NanoCPUs, 0, 0
	}
	if src.CPUShares != 0 {
		dst.CPUShares = src.CPUShares
	}
	if src.CPUPeriod != 0 {
		dst.CPUPeriod, dst.NanoCPUs = src.CPUPeriod, 0
	}
	if src.CPUQuota != 0 {
		dst.CPUQuota, dst.NanoCPUs = src.CPUQuota, 0
	}
	if src.CpusetCpus != "" {
		dst.CpusetCpus = src.CpusetCpus
	}
	if src.CpusetMems != "" {
		dst.CpusetMems = src.CpusetMems
	}
	if src.PidsLimit != nil {
		dst.PidsLimit = src.PidsLimit
	}
	if src.BlkioWeight != 0 {
		dst.BlkioWeight = src.BlkioWeight
	}
	if src.OomKillDisable != nil {
		dst.OomKillDisable = src.OomKillDisable
	}
}

// getStats answers /containers/{id}/stats in Docker's format: one
// sample (stream=false; without one-shot the CPU figures of a sample
// 100 ms earlier as precpu_stats, for a CPU percentage) or one a second.
func (a *Agent) getStats(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
	oneShot := boolParam(r, "one-shot")
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	prev := a.sample(c)
	if !stream {
		if !oneShot && prev.CPUStats.CPUUsage.TotalUsage != 0 {
			time.Sleep(100 * time.Millisecond)
			cur := a.sample(c)
			cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
			prev = cur
		}
		return enc.Encode(prev)
	}
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var pre container.StatsResponse
	for {
		cur := a.sample(c)
		cur.PreCPUStats, cur.PreRead = pre.CPUStats, pre.Read
		if err := enc.Encode(cur); err != nil {
			return nil
		}
		if flusher != nil {
			flusher.Flush()
		}
		pre = cur
		select {
		case <-r.Context().Done():
			return nil
		case <-c.removedCh():
			return nil
		case <-tick.C:
		}
	}
}

func (c *Container) removedCh() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removed
}

// sample reads one stats sample of c (zeros for a container that is not
// running or has no cgroup of its own).
func (a *Agent) sample(c *Container) container.StatsResponse {
	c.mu.Lock()
	out := container.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: time.Now()}
	pid, running := c.State.Pid, c.State.Status == "running"
	c.mu.Unlock()
	if !running {
		return out
	}
	if st, err := cgroup.Stats(a.cgroupPaths(c.ID)); err == nil {
		fillStats(&out, st)
	}
	out.CPUStats.SystemUsage = systemCPU()
	out.CPUStats.OnlineCPUs = uint32(runtime.NumCPU())
	out.Networks = netDev(pid)
	return out
}

func fillStats(out *container.StatsResponse, st *ocgroups.Stats) {
	cu := st.CpuStats.CpuUsage
	out.CPUStats.CPUUsage = container.CPUUsage{TotalUsage: cu.TotalUsage, PercpuUsage: cu.PercpuUsage,
		UsageInKernelmode: cu.UsageInKernelmode, UsageInUsermode: cu.UsageInUsermode}
	t := st.CpuStats.ThrottlingData
	out.CPUStats.ThrottlingData = container.ThrottlingData{Periods: t.Periods, ThrottledPeriods: t.ThrottledPeriods, ThrottledTime: t.ThrottledTime}
	m := st.MemoryStats
	out.MemoryStats = container.MemoryStats{Usage: m.Usage.Usage, MaxUsage: m.Usage.MaxUsage, Failcnt: m.Usage.Failcnt, Limit: m.Usage.Limit, Stats: m.Stats}
	if out.MemoryStats.Limit == 0 || out.MemoryStats.Limit > 1<<60 {
		out.MemoryStats.Limit = hostMemory()
	}
	out.PidsStats = container.PidsStats{Current: st.PidsStats.Current, Limit: st.PidsStats.Limit}
	conv := func(in []ocgroups.BlkioStatEntry) []container.BlkioStatEntry {
		var o []container.BlkioStatEntry
		for _, e := range in {
			o = append(o, container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
		}
		return o
	}
	b := st.BlkioStats
	out.BlkioStats = container.BlkioStats{IoServiceBytesRecursive: conv(b.IoServiceBytesRecursive), IoServicedRecursive: conv(b.IoServicedRecursive)}
}

func hostMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n * 1024
		}
	}
	return 0
}

// systemCPU is the host's CPU time in nanoseconds, from /proc/stat (as
// Docker's system_cpu_usage).
func systemCPU() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range f[1:8] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	return ticks * (1e9 / 100) // USER_HZ is 100 on Linux
}

// netDev reads the interfaces of the container's network namespace.
func netDev(pid int) map[string]container.NetworkStats {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return nil
	}
	out := map[string]container.NetworkStats{}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		out[name] = container.NetworkStats{RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)}
	}
	return out
}

// cgroupInfo is what moss info shows of the cgroups containers get.
func (a *Agent) cgroupInfo() map[string]interface{} {
	s := a.cgroupSetup()
	ctrl := s.Controllers
	if ctrl == nil {
		ctrl = []string{}
	}
	mode := "error"
	if a.cfg.Cgroups.Warn() {
		mode = "warn"
	}
	info := map[string]interface{}{"Version": s.Version, "Controllers": ctrl, "Unsupported": mode}
	if s.Parent != "" {
		info["Parent"] = s.Parent
	}
	if len(s.V1) > 0 {
		info["V1"] = s.V1
	}
	if s.Reason != "" {
		info["Note"] = s.Reason
	}
	return info
}
