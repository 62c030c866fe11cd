// Package agent is the API server: it serves the Docker Engine API on the
// user's socket and owns the container lifecycle, talking to storage for
// images and root file systems and to one shim per container for running
// them. It joins the namespace holder's namespaces at start (rootless) and
// re-adopts running containers after a restart.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/hashicorp/go-hclog"
	"github.com/moby/sys/user"
	"github.com/moby/sys/userns"
	"github.com/opencontainers/runc/libcontainer/exeseal"
	rkclient "github.com/rootless-containers/rootlesskit/v3/pkg/api/client"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"

	"github.com/moss-containers/moss/agent/cgroup"
	"github.com/moss-containers/moss/agent/rootless"
	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/config"
	"github.com/moss-containers/moss/internal/agentexe"
	"github.com/moss-containers/moss/internal/nsjoin"
	"github.com/moss-containers/moss/internal/paths"
	"github.com/moss-containers/moss/internal/spare"
	"github.com/moss-containers/moss/netdrivers"
	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/storage"
)

const envJoined = "_MOSS_AGENT_JOINED"

// Agent serves the API and manages containers.
type Agent struct {
	log   hclog.Logger
	dirs  paths.Dirs
	cfg   config.Config
	store *storage.Store

	// mode is "rootless" or "root"; idSource is the ID mapping's source.
	mode, idSource string
	warnings       []string
	holder         *rootless.Info
	singleID       bool
	// shimExe is the binary shims run from: a sealed memfd copy of this
	// binary, so libcontainer need not copy it again for every container.
	shimExe string
	sealed  *os.File
	// initBinary is bind-mounted into containers run with --init: a file
	// on disk with the mossinit constructor (the front binary, or this one).
	initBinary string
	launcher   *shim.Launcher
	// execLauncher keeps an exec helper started in advance.
	execLauncher *shim.ExecLauncher
	// spareNetNS holds a network namespace made in advance (container_net.go).
	spareNetNS *spare.Spare[string]
	// warm is the container made in advance for the next run (warm.go).
	warm warmPool
	// idle frees memory once requests stop (api.go).
	idle *time.Timer
	// cg is what the user may use of cgroups, found once (container_cgroups.go).
	cg     *cgroup.Setup
	cgOnce sync.Once
	// maxGID is the highest group ID of the user namespace.
	maxGID  uint32
	started time.Time

	// plugins runs the network (and volume) driver plugins; nets are the
	// networks (networks.go).
	plugins *plugins.Manager
	nets    *networkRegistry
	vols    *volumeRegistry
	portsMu sync.Mutex
	ports   port.Manager

	// deleting counts layer deletions in flight (reap.go).
	deleting sync.WaitGroup

	events eventBus

	mu         sync.Mutex
	execs      map[string]*execInstance
	containers map[string]*Container
	names      map[string]string
}

// Main runs `moss agent` and returns the exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 125
	}
	level := hclog.Info
	if *debug || os.Getenv("MOSS_DEBUG") != "" {
		level = hclog.Debug
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "moss", Level: level, Output: os.Stderr})
	if err := run(log, args); err != nil {
		log.Error("agent failed", "error", err)
		fmt.Fprintf(os.Stderr, "moss: %v\n", err)
		return 125
	}
	return 0
}

func run(log hclog.Logger, args []string) error {
	d, err := paths.Default()
	if err != nil {
		return err
	}
	rootMode := os.Geteuid() == 0 && !userns.RunningInUserNS()
	if !rootMode && os.Getenv(envJoined) == "" {
		if err := d.Ensure(); err != nil {
			return err
		}
		h, err := rootless.Ensure(d, log)
		if err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		env := append(os.Environ(), nsjoin.EnvPID+"="+strconv.Itoa(h.ChildPID), envJoined+"=1",
			"MOSS_RUNTIME_DIR="+d.Runtime, "MOSS_DATA_DIR="+d.Data, "MOSS_CONFIG_DIR="+d.Config)
		return syscall.Exec(self, append([]string{os.Args[0], "agent"}, args...), env)
	}
	if rootMode {
		if err := d.Ensure(); err != nil {
			return err
		}
	}
	if v := os.Getenv("MOSS_CONFIG_DIR"); v != "" {
		d.Config = v
	}
	cfg, err := config.Load(config.UserFile(d.Config))
	if err != nil {
		return err
	}
	a := &Agent{log: log, dirs: d, cfg: cfg, containers: map[string]*Container{}, names: map[string]string{}, started: time.Now()}
	if rootMode {
		a.mode, a.idSource = "root", rootless.SourceRoot
	} else {
		a.mode = "rootless"
		if a.holder, err = rootless.Running(d); err != nil {
			return fmt.Errorf("namespace holder: %w", err)
		}
		a.idSource = a.holder.Source
		a.singleID = a.holder.Source == rootless.SourceSingle
		if a.holder.Warning != "" {
			a.warnings = append(a.warnings, a.holder.Warning)
			log.Warn(a.holder.Warning)
		}
	}
	lock := flock.New(d.AgentLock())
	ok, err := lock.TryLock()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("another moss agent is running for this user (lock %s)", lock.Path())
	}
	defer lock.Unlock()

	graph, run := cfg.Storage.GraphRoot, cfg.Storage.RunRoot
	if graph == "" {
		graph = d.GraphRoot()
	}
	if run == "" {
		run = d.RunRoot()
	}
	a.store, err = storage.Open(storage.Options{
		GraphRoot: graph, RunRoot: run, Driver: cfg.Storage.Driver, DriverOptions: cfg.Storage.Options,
		IgnoreChownErrors: a.singleID, SearchRegistries: cfg.Registries.Search, Logger: log.Named("storage"),
	})
	if err != nil {
		return err
	}
	defer a.store.Shutdown()
	if err := a.sealExe(); err != nil {
		return err
	}
	a.launcher = shim.NewLauncher(a.shimExe)
	a.execLauncher = shim.NewExecLauncher(a.shimExe)
	a.execLauncher.Libcontainer = !a.cfg.Runtime.FastExecEnabled()
	defer a.execLauncher.Close()
	defer func() {
		t0 := time.Now()
		a.launcher.Close()
		log.Debug("spare shim ended", "took", time.Since(t0))
	}()
	for _, dir := range []string{d.Containers(), d.RuncRoot(), filepath.Join(d.Runtime, "s")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	a.maxGID = maxMappedGID()
	staleNS := a.staleNetNS()
	a.spareNetNS = spare.New(a.newSpareNetNS, dropNetNS)
	if err := a.loadNetworks(); err != nil {
		return err
	}
	if err := a.loadVolumes(); err != nil {
		return err
	}
	if err := a.startPlugins(); err != nil {
		return err
	}
	defer func() {
		t0 := time.Now()
		a.plugins.Stop()
		log.Debug("plugins stopped", "took", time.Since(t0))
	}()
	if err := a.loadContainers(); err != nil {
		return err
	}
	a.clearNetNS(staleNS)
	a.deleteOrphans()
	defer a.waitLayersDeleted()
	defer a.closeWarm()
	l, err := listen(d.Socket())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.Runtime, "agent.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	a.idle = time.AfterFunc(idleAfter, debug.FreeOSMemory)
	defer a.idle.Stop()
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 30 * time.Second}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("agent ready", "socket", d.Socket(), "mode", a.mode, "storage", a.store.Driver())
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t0 := time.Now()
		_ = srv.Shutdown(ctx)
		log.Debug("API server shut down", "took", time.Since(t0))
	case err := <-errc:
		return err
	}
	_ = os.Remove(filepath.Join(d.Runtime, "agent.pid"))
	return nil
}

// startPlugins starts the built-in network drivers and the third-party
// plugins in the background; the first calls to a driver wait for it.
func (a *Agent) startPlugins() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	netns := ""
	if a.holder != nil {
		netns = filepath.Join(a.holder.StateDir, "netns")
	}
	a.plugins = plugins.NewManager(plugins.LoaderConfig{
		Self:             self,
		Builtins:         map[string][]string{plugins.KindNetwork: netdrivers.Builtin, plugins.KindVolume: {"local"}},
		Dirs:             append(append([]string{}, a.cfg.Plugins.Dirs...), a.dirs.PluginDir()),
		StateDir:         a.dirs.PluginState(),
		RunDir:           a.dirs.PluginRun(),
		NetNS:            netns,
		Options:          a.pluginOptions(),
		HandshakeTimeout: a.cfg.Plugins.Timeout(),
		AgentVersion:     Version,
		OnStart:          a.onPluginStart,
		Log:              a.log,
	})
	a.plugins.Start(context.Background())
	return nil
}

// pluginOptions are the configuration's options for each plugin, and where
// the local volume driver keeps volumes unless configured otherwise.
func (a *Agent) pluginOptions() map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, opts := range a.cfg.Plugins.Options {
		out[name] = opts
	}
	local := map[string]string{"root": a.dirs.Volumes()}
	for k, v := range out["local"] {
		local[k] = v
	}
	out["local"] = local
	return out
}

// maxMappedGID is the highest group ID of our user namespace's GID map.
func maxMappedGID() uint32 {
	maps, err := user.CurrentProcessGIDMap()
	if err != nil {
		return 0
	}
	var max int64
	for _, m := range maps {
		if m.Count > 0 && m.ID+m.Count-1 > max {
			max = m.ID + m.Count - 1
		}
	}
	return uint32(min(max, 2147483647))
}

// portManager is the rootless port driver's API (rootlesskit's, in the
// namespace holder).
func (a *Agent) portManager() (port.Manager, error) {
	a.portsMu.Lock()
	defer a.portsMu.Unlock()
	if a.ports != nil {
		return a.ports, nil
	}
	if a.holder == nil {
		return nil, kindErr(errInvalid, "cannot publish ports: Moss runs as root without the rootless port driver")
	}
	if a.holder.PortDriver != "builtin" {
		return nil, kindErr(errInvalid, "cannot publish ports: network.port_driver is %q (set it to builtin)", a.holder.PortDriver)
	}
	c, err := rkclient.New(filepath.Join(a.holder.StateDir, "api.sock"))
	if err != nil {
		return nil, fmt.Errorf("rootless port driver: %w", err)
	}
	a.ports = c.PortManager()
	return a.ports, nil
}

// listen takes over the socket path unless another agent answers on it.
func listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("an agent is already listening on %s", path)
	}
	_ = os.Remove(path)
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// sealExe makes one sealed memfd copy of the binary for the shims to run
// from: libcontainer then skips its per-container copy (CVE-2019-5736
// protection) because /proc/self/exe already is a sealed clone. That binary
// is the front binary (bin/moss) when it started the agent, whose start-up
// is cheaper than this one's (internal/agentexe); else this binary.
func (a *Agent) sealExe() error {
	src := os.Getenv(agentexe.EnvShimBinary)
	a.initBinary = src
	if a.initBinary == "" {
		a.initBinary, _ = os.Executable()
	}
	if src == "" {
		if exeseal.IsSelfExeCloned() {
			a.shimExe = "/proc/self/exe"
			return nil
		}
		src = "/proc/self/exe"
	}
	// A sealed memfd, not CloneSelfExe's overlayfs variant: only a memfd
	// is recognised as already cloned in the shims.
	f, err := cloneExe(src, a.dirs.Runtime)
	if err != nil {
		a.log.Warn("cannot seal a copy of the binary; containers start slower", "binary", src, "error", err)
		if src != "/proc/self/exe" {
			a.shimExe = src
			return nil
		}
		a.shimExe, err = os.Executable()
		return err
	}
	a.shimExe = "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	// Keep f open for the agent's lifetime; shims exec it by path.
	a.sealed = f
	return nil
}

func cloneExe(src, tmpDir string) (*os.File, error) {
	bin, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer bin.Close()
	st, err := bin.Stat()
	if err != nil {
		return nil, err
	}
	return exeseal.CloneBinary(bin, st.Size(), src, tmpDir)
}

// loadContainers reads persisted containers and reconciles their state with
// their shims: running ones are watched again (and health-checked), ones
// that ended while no agent ran get their recorded exit status; both those
// and stopped ones are restarted as their restart policy says.
func (a *Agent) loadContainers() error {
	entries, err := os.ReadDir(a.dirs.Containers())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), trashPrefix) {
			continue // deleteOrphans
		}
		data, err := os.ReadFile(filepath.Join(a.dirs.Containers(), e.Name(), "container.json"))
		if errors.Is(err, os.ErrNotExist) {
			// A warm container no container claimed, or one whose
			// creation an agent's end cut short.
			a.log.Info("removing an unfinished container", "id", e.Name())
			a.clearWarm(e.Name(), false)
			continue
		}
		if err != nil {
			a.log.Warn("skipping container without metadata", "id", e.Name(), "error", err)
			continue
		}
		c := &Container{}
		if err := json.Unmarshal(data, c); err != nil {
			a.log.Warn("skipping container with broken metadata", "id", e.Name(), "error", err)
			continue
		}
		c.changed, c.removed = make(chan struct{}), make(chan struct{})
		a.containers[c.ID] = c
		a.names[c.Name] = c.ID
		if c.State.Status == "running" || c.State.Status == "removing" {
			if shim.Alive(a.bundle(c.ID)) {
				c.mu.Lock()
				c.State.Status = "running"
				a.startHealth(c)
				c.mu.Unlock()
				go a.watch(c, c.State.Generation)
				continue
			}
			// finish applies the restart policy.
			st, _ := shim.ReadExit(a.bundle(c.ID))
			a.finish(c, c.State.Generation, st)
			continue
		}
		if c.State.Status == "created" {
			a.clearWarm(c.ID, true)
		}
		a.restartAtBoot(c)
	}
	return nil
}
