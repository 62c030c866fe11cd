package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeTree writes files below root: path → content.
func fakeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	userSvc = "user.slice/user-1000.slice/user@1000.service"
	self    = "0::/" + userSvc + "/app.slice/moss-agent.scope\n"
)

// v2Tree is a cgroup v2 host whose systemd delegated user@1000.service
// with cpu, memory and pids (not io); the kernel would make the
// interface files of moss/ itself, the test makes them beforehand.
func v2Tree(t *testing.T) (root string, writable func(string) bool) {
	root = t.TempDir()
	fakeTree(t, root, map[string]string{
		"cgroup.controllers":                                 "cpuset cpu io memory hugetlb pids",
		"user.slice/cgroup.controllers":                      "cpuset cpu io memory pids",
		userSvc + "/cgroup.controllers":                      "cpu memory pids",
		userSvc + "/cgroup.subtree_control":                  "",
		userSvc + "/cgroup.procs":                            "",
		userSvc + "/app.slice/cgroup.procs":                  "",
		userSvc + "/app.slice/moss-agent.scope/cgroup.procs": "4242\n",
		userSvc + "/moss/cgroup.controllers":                 "cpu memory pids",
		userSvc + "/moss/cgroup.subtree_control":             "",
		userSvc + "/moss/cgroup.procs":                       "",
	})
	return root, func(dir string) bool { return strings.HasPrefix(dir, filepath.Join(root, userSvc)) }
}

func TestDiscoverV2Delegated(t *testing.T) {
	root, writable := v2Tree(t)
	s := Discover(Options{Root: root, SelfCgroup: self, Writable: writable})
	if s.Version != 2 || s.Parent != filepath.Join(root, userSvc, "moss") {
		t.Fatalf("setup %+v", s)
	}
	if want := []string{"cpu", "memory", "pids"}; !slices.Equal(s.Controllers, want) {
		t.Errorf("controllers %v, want %v", s.Controllers, want)
	}
	// The controllers were enabled from the delegated root down.
	for _, d := range []string{userSvc, userSvc + "/moss"} {
		got := read(t, filepath.Join(root, d, "cgroup.subtree_control"))
		for _, c := range []string{"+cpu", "+memory", "+pids"} {
			if !strings.Contains(got, c+"\n") {
				t.Errorf("%s/cgroup.subtree_control %q lacks %s", d, got, c)
			}
		}
	}
	if !strings.Contains(s.Reason, "io") || !strings.Contains(s.Reason, "Delegate=") {
		t.Errorf("reason %q does not name io and the fix", s.Reason)
	}
	if p := s.Paths("abc"); p[""] != filepath.Join(root, userSvc, "moss", "abc") || len(p) != 1 {
		t.Errorf("paths %v", p)
	}
}

func TestDiscoverV2Configured(t *testing.T) {
	root, writable := v2Tree(t)
	dir := filepath.Join(root, userSvc, "moss")
	s := Discover(Options{Root: root, V2: dir, Writable: writable})
	if s.Version != 2 || s.Parent != dir {
		t.Fatalf("setup %+v", s)
	}
	s = Discover(Options{Root: root, V2: filepath.Join(root, "user.slice"), Writable: writable})
	if s.Version != 0 || !strings.Contains(s.Reason, "not a writable cgroup directory") {
		t.Fatalf("setup of a directory the user does not own: %+v", s)
	}
}

func TestDiscoverNoDelegation(t *testing.T) {
	root, _ := v2Tree(t)
	s := Discover(Options{Root: root, SelfCgroup: self, Writable: func(string) bool { return false }})
	if s.Version != 0 || !strings.Contains(s.Reason, "no delegated cgroup v2 subtree") {
		t.Fatalf("setup %+v", s)
	}
	// Hybrid: controllers all on v1, nothing configured.
	hybrid := t.TempDir()
	fakeTree(t, hybrid, map[string]string{"unified/cgroup.controllers": "", "memory/cgroup.procs": ""})
	s = Discover(Options{Root: hybrid})
	if s.Version != 0 || !strings.Contains(s.Reason, "hybrid") || !strings.Contains(s.Reason, "[cgroups] v1") {
		t.Fatalf("hybrid setup %+v", s)
	}
	var r specs.LinuxResources
	lim := int64(32 << 20)
	r.Memory = &specs.LinuxMemory{Limit: &lim}
	if _, err := s.Check(&r, false); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "--memory") || !strings.Contains(err.Error(), "cgroups.unsupported") {
		t.Errorf("check of -m without cgroups: %v", err)
	}
}

func TestDiscoverV1(t *testing.T) {
	root := t.TempDir()
	fakeTree(t, root, map[string]string{
		"memory/moss-u/cgroup.procs":      "",
		"cpu,cpuacct/moss-u/cgroup.procs": "", "cpu,cpuacct/moss-u/cpuacct.usage": "0",
		"pids/moss-u/cgroup.procs": "",
	})
	writable := func(d string) bool { return !strings.Contains(d, "pids") }
	s := Discover(Options{Root: root, Writable: writable, V1: map[string]string{
		"memory": filepath.Join(root, "memory/moss-u"), "cpu": filepath.Join(root, "cpu,cpuacct/moss-u"), "pids": filepath.Join(root, "pids/moss-u"),
	}})
	if s.Version != 1 || !slices.Equal(s.Controllers, []string{"cpu", "cpuacct", "memory"}) {
		t.Fatalf("setup %+v", s)
	}
	if !strings.Contains(s.Reason, "pids") || !strings.Contains(s.Reason, "not a writable") {
		t.Errorf("reason %q", s.Reason)
	}
	if p := s.Paths("c1"); p["cpuacct"] != filepath.Join(root, "cpu,cpuacct/moss-u/c1") || p["memory"] != filepath.Join(root, "memory/moss-u/c1") {
		t.Errorf("paths %v", p)
	}
}

func TestCheckWarn(t *testing.T) {
	s := &Setup{Version: 2, Controllers: []string{"memory", "pids"}}
	w := uint16(500)
	n := int64(20)
	r := &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}, BlockIO: &specs.LinuxBlockIO{Weight: &w}}
	if _, err := s.Check(r, false); err == nil || !strings.Contains(err.Error(), "--blkio-weight") || !strings.Contains(err.Error(), "io") {
		t.Fatalf("error mode: %v", err)
	}
	warnings, err := s.Check(r, true)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "--blkio-weight discarded") {
		t.Fatalf("warn mode: %v %v", warnings, err)
	}
	if r.BlockIO != nil || r.Pids == nil {
		t.Errorf("warn mode kept %+v", r)
	}
}

func TestJoinSetStatsV2(t *testing.T) {
	// The cgroup library checks that it writes to cgroupfs unless told.
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	root, writable := v2Tree(t)
	s := Discover(Options{Root: root, SelfCgroup: self, Writable: writable})
	paths := s.Paths("ctr")
	dir := paths[""]
	// The interface files the kernel makes with the cgroup.
	fakeTree(t, dir, map[string]string{
		"cgroup.procs": "", "cgroup.controllers": "cpu memory pids", "cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 0\n",
		"memory.max": "max", "memory.low": "0", "memory.swap.max": "max", "memory.current": "1048576", "memory.peak": "2097152",
		"memory.stat": "anon 524288\nfile 4096\n", "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n",
		"memory.swap.current": "0",
		"cpu.max":             "max 100000", "cpu.weight": "100", "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n",
		"pids.max": "max", "pids.current": "3",
	})
	lim, quota, period, pids := int64(32<<20), int64(50000), uint64(100000), int64(20)
	shares := uint64(512)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &lim},
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
	if err := Join(paths, 4242, r); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cgroup.procs": "4242", "memory.max": "33554432", "cpu.max": "50000 100000", "pids.max": "20",
	} {
		if got := strings.TrimSpace(read(t, filepath.Join(dir, file))); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := strings.TrimSpace(read(t, filepath.Join(dir, "cpu.weight"))); got == "100" || got == "" {
		t.Errorf("cpu.weight %q: shares not converted", got)
	}
	// update
	lim = 64 << 20
	if err := Set(paths, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(read(t, filepath.Join(dir, "memory.max"))); got != "67108864" {
		t.Errorf("memory.max after Set: %q", got)
	}
	st, err := Stats(paths)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryStats.Usage.Usage != 1048576 || st.MemoryStats.Usage.Limit != 64<<20 {
		t.Errorf("memory stats %+v", st.MemoryStats.Usage)
	}
	if st.CpuStats.CpuUsage.TotalUsage != 1500*1000 || st.CpuStats.ThrottlingData.ThrottledPeriods != 1 {
		t.Errorf("cpu stats %+v", st.CpuStats)
	}
	if st.PidsStats.Current != 3 || st.PidsStats.Limit != 20 {
		t.Errorf("pids stats %+v", st.PidsStats)
	}
	if OOMKilled(paths) {
		t.Error("OOMKilled with oom_kill 0")
	}
	fakeTree(t, dir, map[string]string{"memory.events": "oom 1\noom_kill 1\n"})
	if !OOMKilled(paths) {
		t.Error("not OOMKilled with oom_kill 1")
	}
}
