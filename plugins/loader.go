package plugins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// BuiltinRole is the hidden argument with which the agent starts its own
// binary as a built-in plugin: `moss __plugin KIND NAME`.
const BuiltinRole = "__plugin"

// Plugin states, as `moss plugin ls` shows them.
const (
	StatusStarting   = "starting"
	StatusRunning    = "running"
	StatusRestarting = "restarting"
	StatusFailed     = "failed"
	StatusStopped    = "stopped"
)

// LoaderConfig says which plugins the Manager runs and how.
type LoaderConfig struct {
	// Self is the executable of the built-in plugins (the agent's own).
	Self string
	// Builtins maps kinds to the names of built-in drivers.
	Builtins map[string][]string
	// Dirs are directories of third-party plugin executables; a missing
	// directory is no error.
	Dirs []string
	// StateDir and RunDir hold one directory per plugin (its name): its
	// persistent state and its runtime files.
	StateDir, RunDir string
	// NetNS is the rootless network namespace, passed to Configure.
	NetNS string
	// Options are per-plugin options from the configuration file.
	Options map[string]map[string]string
	// HandshakeTimeout bounds a plugin's start (default 10 s).
	HandshakeTimeout time.Duration
	// AgentVersion is passed to Configure.
	AgentVersion string
	// OnStart, if set, is called after every start of a plugin, once it is
	// configured and before other callers reach it, with the driver of its
	// kind (a NetworkDriver or a VolumeDriver). The agent re-creates its
	// networks there.
	OnStart func(ctx context.Context, name string, driver any) error
	Log     hclog.Logger
}

// Status is a plugin as `moss plugin ls` and /moss/v1/plugins show it.
type Status struct {
	Name    string
	Kind    string
	Version string
	Path    string
	Builtin bool
	Status  string
	Pid     int
	Error   string `json:",omitempty"`
}

// Manager starts plugins, watches them and restarts those that die.
type Manager struct {
	cfg     LoaderConfig
	log     hclog.Logger
	mu      sync.Mutex
	plugins map[string]*handle // by name
	failed  []*handle          // executables that never became a plugin
	stopped bool
	loading sync.WaitGroup // the starts of Start
}

// handle is one plugin executable and its current process.
type handle struct {
	m *Manager
	// path is what the user knows the plugin by (its executable, or a
	// Docker plugin's socket or spec file); exe and args start it.
	path    string
	exe     string
	args    []string
	builtin bool
	key     string // stable name of its pid file

	mu      sync.Mutex
	name    string
	kind    string
	version string
	status  string
	err     error
	pid     int
	client  *plugin.Client
	cmd     *exec.Cmd
	driver  any // *networkClient or *volumeClient of the current process
	caps    *networkv1.CapabilitiesResponse
	ready   chan struct{} // closed when the current start attempt is over
	started time.Time
	backoff time.Duration
}

// NewManager returns a Manager for cfg; Start starts the plugins.
func NewManager(cfg LoaderConfig) *Manager {
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	return &Manager{cfg: cfg, log: cfg.Log.Named("plugins"), plugins: map[string]*handle{}}
}

// Start starts every built-in plugin and every executable in the plugin
// directories, concurrently, in the background. Network waits for those
// starts. A plugin that fails is reported by List and logged.
func (m *Manager) Start(ctx context.Context) {
	var hs []*handle
	kinds := make([]string, 0, len(m.cfg.Builtins))
	for k := range m.cfg.Builtins {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		for _, name := range m.cfg.Builtins[kind] {
			h := m.newHandle(m.cfg.Self, m.cfg.Self, []string{BuiltinRole, kind + "driver", name}, true, "builtin-"+name)
			h.name, h.kind = name, kind
			// Known before the start, so callers can wait for it.
			m.plugins[name] = h
			hs = append(hs, h)
		}
	}
	for _, dir := range m.cfg.Dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("plugin directory", "dir", dir, "error", err)
			}
			continue
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			fi, err := os.Stat(p)
			if err != nil || fi.IsDir() {
				continue
			}
			if name, addr, ok := dockerPlugin(p, fi); ok {
				if _, taken := m.plugins[name]; taken {
					m.log.Warn("Docker volume plugin ignored: the name is taken", "path", p, "name", name)
					continue
				}
				h := m.newHandle(p, m.cfg.Self, []string{BuiltinRole, KindVolume + "driver", DockerProtocol, name, addr}, false, "docker-"+name)
				h.name, h.kind = name, KindVolume
				m.plugins[name] = h
				hs = append(hs, h)
				continue
			}
			if fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				hs = append(hs, m.newHandle(p, p, nil, false, "ext-"+e.Name()))
			}
		}
	}
	m.loading.Add(len(hs))
	for _, h := range hs {
		go func() {
			defer m.loading.Done()
			h.start(ctx)
		}()
	}
}

// Wait returns once the plugins that Start started have started or failed.
func (m *Manager) Wait() { m.loading.Wait() }

func (m *Manager) newHandle(path, exe string, args []string, builtin bool, key string) *handle {
	return &handle{m: m, path: path, exe: exe, args: args, builtin: builtin, key: key, status: StatusStarting, ready: make(chan struct{})}
}

// Stop ends every plugin.
func (m *Manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	hs := make([]*handle, 0, len(m.plugins))
	for _, h := range m.plugins {
		hs = append(hs, h)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.mu.Lock()
			c := h.client
			h.status = StatusStopped
			h.mu.Unlock()
			if c != nil {
				c.Kill()
			}
			_ = os.Remove(h.pidFile())
		}()
	}
	wg.Wait()
}

// List reports every plugin, sorted by kind and name.
func (m *Manager) List() []Status {
	m.mu.Lock()
	hs := make([]*handle, 0, len(m.plugins)+len(m.failed))
	for _, h := range m.plugins {
		hs = append(hs, h)
	}
	hs = append(hs, m.failed...)
	m.mu.Unlock()
	out := make([]Status, 0, len(hs))
	for _, h := range hs {
		h.mu.Lock()
		s := Status{Name: h.name, Kind: h.kind, Version: h.version, Path: h.path, Builtin: h.builtin, Status: h.status, Pid: h.pid}
		if h.err != nil {
			s.Error = h.err.Error()
		}
		h.mu.Unlock()
		if s.Name == "" {
			s.Name = filepath.Base(h.path)
		}
		if h.builtin {
			s.Path = ""
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Network returns the network driver called name. Its calls wait for a
// plugin that is (re)starting, and fail with ErrUnavailable when it does
// not come up or dies during the call.
func (m *Manager) Network(name string) (*NetworkHandle, error) {
	h, err := m.find(name, KindNetwork)
	if err != nil {
		return nil, err
	}
	return &NetworkHandle{h: h}, nil
}

// Volume returns the volume driver called name, as Network does.
func (m *Manager) Volume(name string) (*VolumeHandle, error) {
	h, err := m.find(name, KindVolume)
	if err != nil {
		return nil, err
	}
	return &VolumeHandle{h: h}, nil
}

func (m *Manager) find(name, kind string) (*handle, error) {
	m.mu.Lock()
	h, ok := m.plugins[name]
	m.mu.Unlock()
	if !ok {
		// A third-party plugin is known by name once it has started.
		m.loading.Wait()
		m.mu.Lock()
		h, ok = m.plugins[name]
		m.mu.Unlock()
	}
	if !ok || h.kind != kind {
		return nil, NotFound("plugin %q not found: no %s driver of that name (moss plugin ls lists them)", name, kind)
	}
	return h, nil
}

// start starts the plugin process and configures it; on failure the
// handle is failed, or restarting if it had run before.
func (h *handle) start(ctx context.Context) {
	err := h.launch(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.err = err
		h.status = StatusFailed
		h.m.log.Error("plugin failed to start", "path", h.path, "args", strings.Join(h.args, " "), "error", err)
		if h.client != nil {
			go endClient(h.client, h.cmd)
			h.client = nil
		}
		h.driver = nil
		h.pid = 0
		if h.builtin || !h.started.IsZero() {
			// It must run, or ran before: keep trying.
			h.status = StatusRestarting
		} else {
			// An executable that never became a plugin: listed as failed.
			h.m.mu.Lock()
			if h.m.plugins[h.name] == h {
				delete(h.m.plugins, h.name)
			}
			h.m.failed = append(h.m.failed, h)
			h.m.mu.Unlock()
		}
	} else {
		h.err = nil
		h.status = StatusRunning
		h.started = time.Now()
	}
	close(h.ready)
	if h.status == StatusRestarting {
		h.ready = make(chan struct{}) // for the next attempt
		go h.restartLater()
	}
}

func (h *handle) pidFile() string {
	return filepath.Join(h.m.cfg.RunDir, h.key+".pid")
}

// launch runs one start attempt.
func (h *handle) launch(ctx context.Context) error {
	m := h.m
	h.killStale()
	cmd := exec.Command(h.exe, h.args...)
	// A session of its own: ending the plugin ends what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Its gRPC socket in the private runtime directory, not in /tmp.
	cmd.Env = append(os.Environ(), plugin.EnvUnixSocketDir+"="+m.cfg.RunDir)
	h.mu.Lock()
	h.cmd = cmd
	h.mu.Unlock()
	if err := os.MkdirAll(m.cfg.RunDir, 0o700); err != nil {
		return err
	}
	logName := h.key
	if h.builtin {
		logName = h.name
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(nil, nil, nil)},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     m.cfg.HandshakeTimeout,
		Logger:           m.cfg.Log.Named(logName),
		GRPCDialOptions:  []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.WaitForReady(false))},
	})
	h.mu.Lock()
	h.client = client
	h.mu.Unlock()
	proto, err := client.Client()
	if err != nil {
		return fmt.Errorf("not a Moss plugin of protocol version %d: %w", ProtocolVersion, err)
	}
	gc, ok := proto.(*plugin.GRPCClient)
	if !ok {
		return errors.New("plugin does not speak gRPC")
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	_ = os.WriteFile(h.pidFile(), []byte(strconv.Itoa(pid)+"\n"+h.exe+"\n"), 0o600)
	cctx, cancel := context.WithTimeout(ctx, m.cfg.HandshakeTimeout)
	defer cancel()
	base := &baseClient{name: filepath.Base(h.path), c: basev1.NewPluginClient(gc.Conn)}
	info, err := base.Info(cctx)
	if err != nil {
		return fmt.Errorf("plugin info: %w", err)
	}
	if info.GetName() == "" {
		return errors.New("plugin info: the plugin has no name")
	}
	if h.name != "" && info.GetName() != h.name {
		return fmt.Errorf("plugin calls itself %q, expected %q", info.GetName(), h.name)
	}
	var driver any
	switch info.GetKind() {
	case KindNetwork:
		driver = newNetworkClient(info.GetName(), gc.Conn)
	case KindVolume:
		driver = newVolumeClient(info.GetName(), gc.Conn)
	default:
		return fmt.Errorf("plugin %q is of unknown kind %q (want %s or %s)", info.GetName(), info.GetKind(), KindNetwork, KindVolume)
	}
	if h.name == "" {
		m.mu.Lock()
		if other, ok := m.plugins[info.GetName()]; ok {
			m.mu.Unlock()
			return fmt.Errorf("plugin name %q is taken by %s", info.GetName(), other.describe())
		}
		m.plugins[info.GetName()] = h
		m.mu.Unlock()
	}
	h.mu.Lock()
	h.name, h.kind, h.version, h.pid = info.GetName(), info.GetKind(), info.GetVersion(), pid
	h.mu.Unlock()
	state := filepath.Join(m.cfg.StateDir, h.name)
	run := filepath.Join(m.cfg.RunDir, h.name)
	for _, d := range []string{state, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := base.Configure(cctx, &basev1.ConfigureRequest{
		StateDir: state, RunDir: run, NetnsPath: m.cfg.NetNS,
		Options: m.cfg.Options[h.name], AgentVersion: m.cfg.AgentVersion,
	}); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	var caps *networkv1.CapabilitiesResponse
	if n, ok := driver.(*networkClient); ok {
		if caps, err = n.Capabilities(cctx); err != nil {
			return fmt.Errorf("capabilities: %w", err)
		}
	}
	if m.cfg.OnStart != nil {
		if err := m.cfg.OnStart(cctx, h.name, driver); err != nil {
			return err
		}
	}
	h.mu.Lock()
	h.driver, h.caps = driver, caps
	h.mu.Unlock()
	go h.watch(client, pid)
	m.log.Debug("plugin started", "name", h.name, "kind", h.kind, "pid", pid)
	return nil
}

func (h *handle) describe() string {
	if h.builtin {
		return "the built-in driver"
	}
	return h.path
}

// endClient ends a plugin process that failed its start, with whatever it
// started: go-plugin's Kill waits for the output pipes, which a child of
// the plugin may hold open.
func endClient(c *plugin.Client, cmd *exec.Cmd) {
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	c.Kill()
}

// killStale ends a process of this plugin that an earlier agent left
// running (it was killed and could not end its plugins).
func (h *handle) killStale() {
	data, err := os.ReadFile(h.pidFile())
	if err != nil {
		return
	}
	pidStr, path, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 1 {
		return
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return
	}
	want := strings.TrimSpace(path)
	if exe != want && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != filepath.Base(want) {
		return
	}
	h.m.log.Info("ending a plugin process left by an earlier agent", "path", want, "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 200; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watch waits for the plugin process to end and restarts it unless the
// Manager is stopping.
func (h *handle) watch(c *plugin.Client, pid int) {
	if pid > 0 {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(fds, -1); err != unix.EINTR {
					break
				}
			}
			unix.Close(fd)
		}
	}
	for !c.Exited() {
		time.Sleep(20 * time.Millisecond)
	}
	h.m.mu.Lock()
	stopped := h.m.stopped
	h.m.mu.Unlock()
	h.mu.Lock()
	if stopped || h.client != c {
		h.mu.Unlock()
		return
	}
	h.m.log.Error("plugin process ended: restarting it", "name", h.name, "pid", pid)
	h.status = StatusRestarting
	h.driver = nil
	h.client = nil
	h.pid = 0
	h.ready = make(chan struct{})
	cmd := h.cmd
	h.mu.Unlock()
	endClient(c, cmd)
	go h.restartLater()
}

// restartLater starts the plugin again after a back-off that grows while
// it keeps dying young.
func (h *handle) restartLater() {
	h.mu.Lock()
	switch {
	case h.backoff == 0 || (!h.started.IsZero() && time.Since(h.started) > 30*time.Second):
		h.backoff = 100 * time.Millisecond
	case h.backoff < 5*time.Second:
		h.backoff *= 2
	}
	d := h.backoff
	if h.status != StatusRestarting {
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	time.Sleep(d)
	h.m.mu.Lock()
	stopped := h.m.stopped
	h.m.mu.Unlock()
	if stopped {
		h.mu.Lock()
		close(h.ready)
		h.mu.Unlock()
		return
	}
	h.start(context.Background())
}

// current waits (up to the handshake timeout, or ctx) for a running
// process and returns its driver.
func (h *handle) current(ctx context.Context) (any, error) {
	t := time.NewTimer(h.m.cfg.HandshakeTimeout)
	defer t.Stop()
	for {
		h.mu.Lock()
		d, ready, status, err := h.driver, h.ready, h.status, h.err
		name := h.name
		h.mu.Unlock()
		if d != nil {
			return d, nil
		}
		if status == StatusFailed || status == StatusStopped {
			msg := status
			if err != nil {
				msg = err.Error()
			}
			return nil, &Error{Kind: ErrUnavailable, Msg: fmt.Sprintf("plugin %q unavailable: %s", name, msg)}
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, &Error{Kind: ErrUnavailable, Msg: fmt.Sprintf("plugin %q unavailable: it is %s", name, status)}
		}
	}
}

// NetworkHandle is a network driver whose process may come and go: every
// call goes to the plugin's current process.
type NetworkHandle struct{ h *handle }

var _ NetworkDriver = (*NetworkHandle)(nil)

func (n *NetworkHandle) driver(ctx context.Context) (*networkClient, error) {
	d, err := n.h.current(ctx)
	if err != nil {
		return nil, err
	}
	return d.(*networkClient), nil
}

// Name is the driver's name.
func (n *NetworkHandle) Name() string { return n.h.name }

func (n *NetworkHandle) Info(ctx context.Context) (*basev1.InfoResponse, error) {
	d, err := n.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.Info(ctx)
}

func (n *NetworkHandle) Configure(ctx context.Context, req *basev1.ConfigureRequest) error {
	return Unsupported("the loader configures plugins")
}

// Capabilities returns what the plugin's current process said at its start.
func (n *NetworkHandle) Capabilities(ctx context.Context) (*networkv1.CapabilitiesResponse, error) {
	if _, err := n.driver(ctx); err != nil {
		return nil, err
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	return n.h.caps, nil
}

func (n *NetworkHandle) CreateNetwork(ctx context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	d, err := n.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.CreateNetwork(ctx, req)
}

func (n *NetworkHandle) DeleteNetwork(ctx context.Context, req *networkv1.DeleteNetworkRequest) error {
	d, err := n.driver(ctx)
	if err != nil {
		return err
	}
	return d.DeleteNetwork(ctx, req)
}

func (n *NetworkHandle) Connect(ctx context.Context, req *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	d, err := n.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.Connect(ctx, req)
}

func (n *NetworkHandle) Disconnect(ctx context.Context, req *networkv1.DisconnectRequest) error {
	d, err := n.driver(ctx)
	if err != nil {
		return err
	}
	return d.Disconnect(ctx, req)
}

// VolumeHandle is a volume driver whose process may come and go, as
// NetworkHandle.
type VolumeHandle struct{ h *handle }

var _ VolumeDriver = (*VolumeHandle)(nil)

func (v *VolumeHandle) driver(ctx context.Context) (*volumeClient, error) {
	d, err := v.h.current(ctx)
	if err != nil {
		return nil, err
	}
	return d.(*volumeClient), nil
}

// Name is the driver's name.
func (v *VolumeHandle) Name() string { return v.h.name }

func (v *VolumeHandle) Info(ctx context.Context) (*basev1.InfoResponse, error) {
	d, err := v.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.Info(ctx)
}

func (v *VolumeHandle) Configure(ctx context.Context, req *basev1.ConfigureRequest) error {
	return Unsupported("the loader configures plugins")
}

func (v *VolumeHandle) Capabilities(ctx context.Context) (*volumev1.CapabilitiesResponse, error) {
	d, err := v.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.Capabilities(ctx)
}

func (v *VolumeHandle) Create(ctx context.Context, req *volumev1.CreateRequest) (*volumev1.Volume, error) {
	d, err := v.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.Create(ctx, req)
}

func (v *VolumeHandle) Remove(ctx context.Context, req *volumev1.RemoveRequest) error {
	d, err := v.driver(ctx)
	if err != nil {
		return err
	}
	return d.Remove(ctx, req)
}

func (v *VolumeHandle) Mount(ctx context.Context, req *volumev1.MountRequest) (string, error) {
	d, err := v.driver(ctx)
	if err != nil {
		return "", err
	}
	return d.Mount(ctx, req)
}

func (v *VolumeHandle) Unmount(ctx context.Context, req *volumev1.UnmountRequest) error {
	d, err := v.driver(ctx)
	if err != nil {
		return err
	}
	return d.Unmount(ctx, req)
}

func (v *VolumeHandle) Get(ctx context.Context, req *volumev1.GetRequest) (*volumev1.Volume, error) {
	d, err := v.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.Get(ctx, req)
}

func (v *VolumeHandle) List(ctx context.Context) ([]*volumev1.Volume, error) {
	d, err := v.driver(ctx)
	if err != nil {
		return nil, err
	}
	return d.List(ctx)
}

// Volumes returns the volume drivers that are known, running or not.
func (m *Manager) Volumes() []*VolumeHandle {
	m.loading.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*VolumeHandle
	for _, h := range m.plugins {
		if h.kind == KindVolume {
			out = append(out, &VolumeHandle{h: h})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].h.name < out[j].h.name })
	return out
}

// DockerProtocol is the built-in role that adapts a Docker volume plugin
// (its HTTP protocol on a socket): `moss __plugin volumedriver
// docker-protocol NAME ADDR`.
const DockerProtocol = "docker-protocol"

// dockerPlugin recognises a Docker plugin in a plugin directory, as
// Docker discovers them: NAME.sock, a unix socket, or NAME.spec (an
// address) or NAME.json (a spec with Addr and TLS settings), and returns
// its name and the address the adapter is given: the socket's, or the
// spec file, which the adapter reads at each start.
func dockerPlugin(path string, fi os.FileInfo) (name, addr string, ok bool) {
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	name = strings.TrimSuffix(base, ext)
	switch {
	case name == "":
	case ext == ".sock" && fi.Mode()&os.ModeSocket != 0:
		return name, "unix://" + path, true
	case (ext == ".spec" || ext == ".json") && fi.Mode().IsRegular():
		return name, path, true
	}
	return "", "", false
}
