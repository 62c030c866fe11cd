package agent

import (
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/system"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/storage"
)

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (a *Agent) version(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform:   system.PlatformInfo{Name: "Moss"},
		Version:    Version,
		APIVersion: APIVersion, MinAPIVersion: MinAPIVersion,
		Os: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(),
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{
			{Name: "Moss", Version: Version, Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": runtime.GOOS, "Arch": runtime.GOARCH}},
			{Name: "runc (libcontainer)", Version: "1.5.2"},
		},
	})
	return nil
}

func (a *Agent) info(w http.ResponseWriter, r *http.Request) error {
	var running, stopped, total int
	for _, c := range a.snapshot() {
		c.mu.Lock()
		switch c.State.Status {
		case "running":
			running++
		case "gone":
			c.mu.Unlock()
			continue
		default:
			stopped++
		}
		total++
		c.mu.Unlock()
	}
	imgs, _ := a.store.Images()
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	host, _ := os.Hostname()
	sec := []string{"name=rootless"}
	if a.mode == "root" {
		sec = nil
	}
	if a.seccompActive() {
		sec = append(sec, "name=seccomp,profile=builtin")
	}
	sec = append(sec, "name=cgroupns")
	info := system.Info{
		ID: "moss", Containers: total, ContainersRunning: running, ContainersStopped: stopped,
		Images: len(imgs), Driver: a.store.Driver(),
		DriverStatus:  [][2]string{{"Graph Root", a.store.GraphRoot()}, {"Run Root", a.store.RunRoot()}},
		KernelVersion: kernelVersion(), OperatingSystem: osRelease(), OSType: "linux",
		Architecture: runtime.GOARCH, NCPU: runtime.NumCPU(), MemTotal: int64(si.Totalram) * int64(si.Unit),
		DockerRootDir: a.dirs.Data, Name: host, ServerVersion: Version,
		SecurityOptions: sec, Warnings: a.warnings, CgroupDriver: "none", LoggingDriver: "json-file",
		DefaultRuntime: "runc", Runtimes: map[string]system.RuntimeWithStatus{"runc": {}},
		SystemTime: time.Now().Format(time.RFC3339Nano), CgroupVersion: cgroupVersion(),
	}
	info.Plugins.Log = []string{"json-file"}
	for _, p := range a.plugins.List() {
		switch {
		case p.Kind == "network" && p.Status != "failed":
			info.Plugins.Network = append(info.Plugins.Network, p.Name)
		case p.Kind == "volume" && p.Status != "failed":
			info.Plugins.Volume = append(info.Plugins.Volume, p.Name)
		}
	}
	if info.Warnings == nil {
		info.Warnings = []string{}
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (a *Agent) seccompActive() bool { return seccomp.Enabled && a.cfg.Runtime.SeccompEnabled() }

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func osRelease() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// mossInfo is what `moss info` shows beyond Docker's fields.
func (a *Agent) mossInfo(w http.ResponseWriter, r *http.Request) error {
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	gidMap, _ := os.ReadFile("/proc/self/gid_map")
	idmap := map[string]interface{}{"Source": a.idSource, "UIDMap": fields(uidMap), "GIDMap": fields(gidMap)}
	if a.idSource == "single" {
		idmap["Note"] = "single-ID mapping: only your own user ID is mapped (uid 0 in containers)"
	}
	netw := map[string]interface{}{"Driver": "none", "PortDriver": "none", "DetachedNetNS": false}
	if a.holder != nil {
		netw = map[string]interface{}{"Driver": a.holder.NetworkDriver, "PortDriver": a.holder.PortDriver, "DetachedNetNS": true}
	}
	fsName, network, _ := storage.FilesystemName(a.store.GraphRoot())
	files := a.cfg.Files
	if files == nil {
		files = []string{}
	}
	seccompState := "inactive (built without libseccomp)"
	if a.seccompActive() {
		seccompState = "active (Docker's default profile)"
	} else if seccomp.Enabled {
		seccompState = "disabled in configuration"
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{
		"Rootless":  a.mode == "rootless",
		"Mode":      a.mode,
		"IDMapping": idmap,
		"Storage": map[string]interface{}{
			"Driver": a.store.Driver(), "GraphRoot": a.store.GraphRoot(), "RunRoot": a.store.RunRoot(),
			"GraphRootFilesystem": fsName, "GraphRootOnNetworkFS": network,
		},
		"Network": netw,
		"Runtime": "libcontainer (runc 1.5.2), embedded",
		"Seccomp": seccompState,
		"Kernel": map[string]interface{}{
			"Version": kernelVersion(), "CgroupVersion": cgroupVersion(),
		},
		"Cgroups":     a.cgroupInfo(),
		"ConfigFiles": files,
		"Socket":      a.dirs.Socket(),
		"Warnings":    a.warnings,
	})
	return nil
}

func fields(b []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			out = append(out, strings.Join(f, ":"))
		}
	}
	return out
}
