// Package rootless owns the namespace holder: a small long-lived process pair
// built from rootlesskit's parent and child that keeps the user namespace,
// the mount namespace and the detached network namespace alive independently
// of the agent. It starts the holder, finds a running one, and provides the
// single-ID mapping helpers used when the user has no subordinate IDs. It must
// not know about containers or the API.
package rootless

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/rootless-containers/rootlesskit/v3/pkg/child"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network/gvisortapvsock"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network/pasta"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network/slirp4netns"
	"github.com/rootless-containers/rootlesskit/v3/pkg/parent"
	"github.com/rootless-containers/rootlesskit/v3/pkg/parent/idtools"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	portbuiltin "github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin"

	"github.com/moss-containers/moss/config"
	"github.com/moss-containers/moss/internal/atomicfile"
	"github.com/moss-containers/moss/internal/logfile"
	"github.com/moss-containers/moss/internal/paths"
)

// Role is the hidden argument that makes the binary run as the holder.
const Role = "__holder"

const (
	envPipeFD     = "_MOSS_HOLDER_PIPEFD"
	envStateDir   = "_MOSS_HOLDER_STATEDIR"
	envActivation = "_MOSS_HOLDER_ACTIVATION"
	envRunHelper  = "_MOSS_HOLDER_RUNHELPER"
	readyFile     = "ready"
	infoFile      = "holder.json"
)

// Mapping sources reported by Info.
const (
	SourceSubuid = "subuid"
	SourceSingle = "single"
	SourceRoot   = "root"
)

// Info describes a running holder.
type Info struct {
	// PID of the holder's parent process, in the host namespaces.
	PID int `json:"pid"`
	// ChildPID is the process whose namespaces the agent joins.
	ChildPID int `json:"child_pid"`
	// Source is SourceSubuid or SourceSingle.
	Source string `json:"source"`
	// Warning is set when Moss fell back to a single-ID mapping.
	Warning string `json:"warning,omitempty"`
	// NetworkDriver and PortDriver are the holder's drivers.
	NetworkDriver string `json:"network_driver"`
	PortDriver    string `json:"port_driver"`
	// StateDir is rootlesskit's state directory (netns, api.sock).
	StateDir string `json:"state_dir"`
}

// InfoPath is where the holder describes itself.
func InfoPath(d paths.Dirs) string { return filepath.Join(d.Runtime, infoFile) }

// Running returns the running holder's Info, or an error when none runs.
func Running(d paths.Dirs) (*Info, error) {
	data, err := os.ReadFile(InfoPath(d))
	if err != nil {
		return nil, err
	}
	var in Info
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("read %s: %w", InfoPath(d), err)
	}
	if in.ChildPID <= 0 || !alive(in.ChildPID) || !alive(in.PID) {
		return nil, errors.New("namespace holder is not running")
	}
	if _, err := os.Stat(filepath.Join(in.StateDir, readyFile)); err != nil {
		return nil, errors.New("namespace holder is not ready")
	}
	return &in, nil
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// Ensure returns the running holder or starts one and waits until it is
// ready. The holder's output goes to holder.log in the runtime directory.
func Ensure(d paths.Dirs, log hclog.Logger) (*Info, error) {
	if in, err := Running(d); err == nil {
		return in, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(d.Runtime, "holder.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	_ = os.Remove(InfoPath(d))
	cmd := exec.Command(self, Role)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "MOSS_RUNTIME_DIR="+d.Runtime, "MOSS_DATA_DIR="+d.Data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start namespace holder: %w", err)
	}
	log.Debug("started namespace holder", "pid", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		if in, err := Running(d); err == nil {
			return in, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("namespace holder exited (%v): %s", err, logfile.Tail(logPath, 8))
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("namespace holder not ready after 30s: see %s", logPath)
		}
	}
}

// Main runs the holder role (parent, rootlesskit child, or pause process,
// told apart by the environment) and returns the exit code.
func Main() int {
	switch {
	case len(os.Args) > 2 && os.Args[2] == "pause":
		return pause()
	case os.Getenv(envPipeFD) != "":
		return runChild()
	default:
		return runParent()
	}
}

func runParent() int {
	log := hclog.New(&hclog.LoggerOptions{Name: "holder", Level: hclog.Info, Output: os.Stderr})
	d, err := paths.Default()
	if err == nil {
		err = d.Ensure()
	}
	if err != nil {
		log.Error("holder", "error", err)
		return 1
	}
	cfg, err := config.Load(config.UserFile(d.Config))
	if err != nil {
		log.Error("holder", "error", err)
		return 1
	}
	netDriver, err := ResolveNetworkDriver(cfg.Network.Driver)
	if err != nil {
		log.Error("holder", "error", err)
		return 1
	}
	cfg.Network.Driver = netDriver
	if netDriver == "none" {
		cfg.Network.PortDriver = "none"
	}
	in := Info{PID: os.Getpid(), StateDir: d.Holder(), NetworkDriver: netDriver, PortDriver: cfg.Network.PortDriver}
	source, warning, err := chooseMapping(cfg.IDMap.Source)
	if err != nil {
		log.Error("holder", "error", err)
		return 1
	}
	in.Source, in.Warning = source, warning
	if warning != "" {
		log.Warn(warning)
	}
	if source == SourceSingle {
		if err := installSingleIDHelpers(d.Runtime); err != nil {
			log.Error("install single-ID helpers", "error", err)
			return 1
		}
	}
	if err := parent.InitStateDir(d.Holder()); err != nil {
		log.Error("init state dir", "error", err)
		return 1
	}
	opt := parent.Opt{
		PipeFDEnvKey:             envPipeFD,
		ChildUseActivationEnvKey: envActivation,
		StateDir:                 d.Holder(),
		StateDirEnvKey:           envStateDir,
		DetachNetNS:              true,
		Propagation:              "rslave",
		SubidSource:              parent.SubidSourceAuto,
	}
	w := log.Named("rootlesskit").StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	if opt.NetworkDriver, err = parentNetworkDriver(cfg.Network, w); err != nil {
		log.Error("network driver", "error", err)
		return 1
	}
	if opt.NetworkDriver != nil && cfg.Network.PortDriver == "builtin" {
		if opt.PortDriver, err = portbuiltin.NewParentDriver(w, d.Holder(), false, "auto"); err != nil {
			log.Error("port driver", "error", err)
			return 1
		}
	}
	// The info file appears once the child reports ready (Running checks
	// the ready file), so writing it early is safe.
	go func() {
		for i := 0; i < 3000; i++ {
			data, err := os.ReadFile(filepath.Join(d.Holder(), parent.StateFileChildPID))
			if err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
					in.ChildPID = pid
					b, _ := json.Marshal(in)
					_ = atomicfile.Write(InfoPath(d), b)
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if err := parent.Parent(opt); err != nil {
		log.Error("holder stopped", "error", err)
		return 1
	}
	return 0
}

func parentNetworkDriver(n config.Network, w interface {
	Write([]byte) (int, error)
}) (network.ParentDriver, error) {
	_, ipnet, err := net.ParseCIDR(n.CIDR)
	if err != nil {
		return nil, err
	}
	switch n.Driver {
	case "none":
		return nil, nil
	case "slirp4netns":
		bin, err := exec.LookPath("slirp4netns")
		if err != nil {
			return nil, fmt.Errorf("network.driver slirp4netns: %w (install the slirp4netns package)", err)
		}
		feat, err := slirp4netns.DetectFeatures(bin)
		if err != nil {
			return nil, err
		}
		// The sandbox (pivot_root) cannot work with a detached netns.
		return slirp4netns.NewParentDriver(w, bin, n.MTU, ipnet, "tap0", false, "", false, feat.SupportsEnableSeccomp, false)
	case "pasta":
		bin, err := exec.LookPath("pasta")
		if err != nil {
			return nil, fmt.Errorf("network.driver pasta: %w (install the passt package)", err)
		}
		return pasta.NewParentDriver(w, bin, n.MTU, ipnet, "tap0", "", false, false, false)
	default:
		return gvisortapvsock.NewParentDriver(w, n.MTU, ipnet, "tap0", false, false)
	}
}

// ResolveNetworkDriver turns "auto" into the first available driver: pasta,
// then slirp4netns, then the in-process gvisor-tap-vsock when it is compiled
// in (it is not by default: its packages cost every process of the binary
// about 6 ms of start-up and 7 MiB of memory; see the README), else none.
func ResolveNetworkDriver(name string) (string, error) {
	if name == "gvisor-tap-vsock" && !gvisortapvsock.Available {
		return "", errors.New("network.driver gvisor-tap-vsock is not compiled into this binary: rebuild with `make build GVISOR=1`, or use pasta or slirp4netns")
	}
	if name != "auto" {
		return name, nil
	}
	for _, bin := range []string{"pasta", "slirp4netns"} {
		if _, err := exec.LookPath(bin); err == nil {
			return bin, nil
		}
	}
	if gvisortapvsock.Available {
		return "gvisor-tap-vsock", nil
	}
	return "none", nil
}

func childNetworkDriver(name string) network.ChildDriver {
	switch name {
	case "none":
		return nil
	case "slirp4netns":
		return slirp4netns.NewChildDriver()
	case "pasta":
		return pasta.NewChildDriver()
	default:
		return gvisortapvsock.NewChildDriver()
	}
}

func runChild() int {
	log := hclog.New(&hclog.LoggerOptions{Name: "holder-child", Level: hclog.Info, Output: os.Stderr})
	d, err := paths.Default()
	if err != nil {
		log.Error("holder child", "error", err)
		return 1
	}
	cfg, err := config.Load(config.UserFile(d.Config))
	if err == nil {
		cfg.Network.Driver, err = ResolveNetworkDriver(cfg.Network.Driver)
	}
	if err != nil {
		log.Error("holder child", "error", err)
		return 1
	}
	if cfg.Network.Driver == "none" {
		cfg.Network.PortDriver = "none"
	}
	self, err := os.Executable()
	if err != nil {
		log.Error("holder child", "error", err)
		return 1
	}
	opt := child.Opt{
		PipeFDEnvKey:              envPipeFD,
		RunActivationHelperEnvKey: envRunHelper,
		ChildUseActivationEnvKey:  envActivation,
		StateDirEnvKey:            envStateDir,
		TargetCmd:                 []string{self, Role, "pause"},
		NetworkDriver:             childNetworkDriver(cfg.Network.Driver),
		DetachNetNS:               true,
		Propagation:               "rslave",
	}
	if opt.NetworkDriver != nil && cfg.Network.PortDriver == "builtin" {
		opt.PortDriver = portchild(log)
	}
	if err := child.Child(opt); err != nil {
		log.Error("holder child stopped", "error", err)
		return 1
	}
	return 0
}

func portchild(log hclog.Logger) port.ChildDriver {
	return portbuiltin.NewChildDriver(log.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
}

// pause is the holder's target process: it marks the holder ready and then
// waits for a termination signal, keeping the namespaces alive.
func pause() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if dir := os.Getenv(envStateDir); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, readyFile), nil, 0o600)
	}
	<-sig
	return 0
}

// chooseMapping decides between subordinate IDs and a single-ID mapping.
func chooseMapping(want string) (source, warning string, err error) {
	u, err := user.Current()
	if err != nil {
		return "", "", err
	}
	if want == SourceSingle {
		return SourceSingle, "", nil
	}
	reason := ""
	if _, err := exec.LookPath("newuidmap"); err != nil {
		reason = "newuidmap is not installed (Debian/Ubuntu: apt install uidmap)"
	} else if _, err := exec.LookPath("newgidmap"); err != nil {
		reason = "newgidmap is not installed (Debian/Ubuntu: apt install uidmap)"
	} else if uid, _ := strconv.Atoi(u.Uid); true {
		if _, _, err := idtools.GetSubIDRanges(uid, u.Username); err != nil && !hasDynamicSubIDs(u.Username) {
			reason = fmt.Sprintf("user %s has no subordinate ID range in /etc/subuid and /etc/subgid (an administrator can add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s)", u.Username, u.Username)
		}
	}
	if reason == "" {
		return SourceSubuid, "", nil
	}
	if want == SourceSubuid {
		return "", "", fmt.Errorf("idmap.source is subuid but %s", reason)
	}
	return SourceSingle, "using a single-ID mapping because " + reason + ": containers run as your user only; files owned by other IDs in images belong to your user", nil
}

func hasDynamicSubIDs(username string) bool {
	bin, err := exec.LookPath("getsubids")
	if err != nil {
		return false
	}
	out, err := exec.Command(bin, username).Output()
	return err == nil && len(bytes.TrimSpace(out)) > 0
}
