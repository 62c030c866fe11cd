package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moss-containers/moss/agent/cgroup"
	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/agent/spec"
	"github.com/moss-containers/moss/storage"
)

// createContainer makes a container from cfg: the image's defaults merged
// into the configuration, a fresh writable layer, persisted metadata.
func (a *Agent) createContainer(name string, cfg *container.Config, host *container.HostConfig, nc *network.NetworkingConfig) (*Container, []string, error) {
	if cfg == nil || cfg.Image == "" {
		return nil, nil, kindErr(errInvalid, "no image specified")
	}
	if host == nil {
		host = &container.HostConfig{}
	}
	if err := validateHost(host); err != nil {
		return nil, nil, err
	}
	if err := validateEnv(cfg.Env); err != nil {
		return nil, nil, err
	}
	if err := validateHealth(cfg.Healthcheck); err != nil {
		return nil, nil, err
	}
	host = ptrCopy(host)
	nets, err := a.resolveNetworks(cfg, host, nc)
	if err != nil {
		return nil, nil, err
	}
	_, warnings, err := a.checkResources(host)
	if err != nil {
		return nil, nil, err
	}
	if host.NetworkMode == "host" && (len(host.PortBindings) > 0 || host.PublishAllPorts) {
		warnings = append(warnings, "Published ports are discarded when using host network mode")
		host.PortBindings, host.PublishAllPorts = nil, false
	}
	if name != "" && !validName.MatchString(name) {
		return nil, nil, kindErr(errInvalid, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	img, err := a.store.Image(cfg.Image)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil, kindErr(errNotFound, "No such image: %s", cfg.Image)
		}
		return nil, nil, err
	}
	merged := *cfg
	ic := img.Config.Config
	if merged.Entrypoint == nil {
		merged.Entrypoint = ic.Entrypoint
		if len(merged.Cmd) == 0 {
			merged.Cmd = ic.Cmd
		}
	}
	if len(merged.Entrypoint) == 1 && merged.Entrypoint[0] == "" {
		merged.Entrypoint = nil
	}
	if len(merged.Entrypoint) == 0 && len(merged.Cmd) == 0 {
		return nil, nil, kindErr(errInvalid, "no command specified")
	}
	merged.Env = spec.MergeEnv(ic.Env, cfg.Env)
	a.imageDefaults(&merged, img.ID)
	if merged.WorkingDir == "" {
		merged.WorkingDir = ic.WorkingDir
	}
	if merged.User == "" {
		merged.User = ic.User
	}
	if merged.StopSignal == "" {
		merged.StopSignal = ic.StopSignal
	}
	if merged.StopSignal != "" {
		if _, err := spec.Signal(merged.StopSignal); err != nil {
			return nil, nil, kindErr(errInvalid, "invalid stop signal: %s", merged.StopSignal)
		}
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		merged.Labels = labels
	}
	mounts, volReqs, err := a.resolveMounts(&merged, host, ic.Volumes)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(mounts))
	for _, m := range mounts {
		if m.Type == mountVolume {
			names = append(names, m.Name)
		}
	}
	release := a.reserveVolumes(names)
	if merged.Hostname == "" && host.NetworkMode == "host" {
		// As docker: the host's network, the host's name.
		merged.Hostname, _ = os.Hostname()
	}
	var warm *warmContainer
	if a.warmable(&merged, host, len(mounts)) {
		// (Hostname "" still: the default, the ID's.)
		warm = a.claimWarm(warmKey{imageID: img.ID, volatile: host.AutoRemove, config: warmConfig(&merged, host, merged.Hostname)})
	}
	id := newID()
	if warm != nil {
		id = warm.id
	}
	if merged.Hostname == "" {
		merged.Hostname = id[:12]
	}
	a.mu.Lock()
	if name == "" {
		name = a.generateName()
	}
	name = strings.TrimPrefix(name, "/")
	if other, ok := a.names[name]; ok {
		a.mu.Unlock()
		release()
		return nil, nil, kindErr(errConflict, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	a.names[name] = id // reserve
	a.mu.Unlock()
	c := &Container{
		ID: id, Name: name, Created: time.Now().UTC(), Image: cfg.Image, ImageID: img.ID,
		Config: &merged, HostConfig: host, State: State{Status: "created"}, Networks: nets,
		Mounts: mounts, changed: make(chan struct{}), removed: make(chan struct{}), warm: warm,
	}
	var anon []string
	fail := func(err error) (*Container, []string, error) {
		a.mu.Lock()
		delete(a.names, name)
		a.mu.Unlock()
		release()
		a.removeAnonymous(anon)
		c.mu.Lock()
		a.releaseWarm(c)
		c.mu.Unlock()
		_ = a.store.DeleteContainer(id)
		_ = os.RemoveAll(a.bundle(id))
		return nil, nil, err
	}
	if err := os.MkdirAll(a.bundle(id), 0o700); err != nil {
		return fail(err)
	}
	if anon, err = a.createMountVolumes(context.Background(), mounts, volReqs); err != nil {
		return fail(err)
	}
	t0 := time.Now()
	if warm == nil {
		if err := a.store.CreateContainer(id, img.ID, host.AutoRemove); err != nil {
			return fail(fmt.Errorf("create container layer: %w", err))
		}
	}
	t1 := time.Now()
	if err := a.save(c); err != nil {
		return fail(err)
	}
	a.log.Debug("created", "id", id, "layer", t1.Sub(t0), "metadata", time.Since(t1), "warm", warm != nil)
	a.mu.Lock()
	a.containers[id] = c
	a.mu.Unlock()
	release()
	a.containerEvent(c, events.ActionCreate, nil)
	return c, warnings, nil
}

// ptrCopy returns a shallow copy of h, so that normalising it does not
// change the caller's.
func ptrCopy(h *container.HostConfig) *container.HostConfig {
	c := *h
	return &c
}

func validateEnv(env []string) error {
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if k == "" || strings.ContainsAny(k, " \t\n\x00") {
			return kindErr(errInvalid, "invalid environment variable: %q", e)
		}
	}
	return nil
}

func validateHost(h *container.HostConfig) error {
	switch h.LogConfig.Type {
	case "", "json-file":
	default:
		return kindErr(errInvalid, "log driver %q is not supported: use json-file", h.LogConfig.Type)
	}
	for k, v := range h.LogConfig.Config {
		switch k {
		case "max-size":
			if parseSize(v) <= 0 {
				return kindErr(errInvalid, "invalid log option max-size=%q: want a size such as 10m", v)
			}
		case "max-file":
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				return kindErr(errInvalid, "invalid log option max-file=%q: want a number ≥ 1", v)
			}
		default:
			return kindErr(errInvalid, "unknown log option %q for json-file (max-size, max-file)", k)
		}
	}
	return validateRestart(h)
}

var adjectives = []string{"brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "proud", "quiet", "sharp", "tender", "vivid", "witty", "zen"}
var nouns = []string{"lichen", "fern", "spore", "frond", "sedge", "bryum", "sphagnum", "hornwort", "liverwort", "peat", "rhizoid", "thallus"}

// generateName returns an unused adjective_noun name. Callers hold a.mu.
func (a *Agent) generateName() string {
	for i := 0; ; i++ {
		b := []byte(newID())
		n := adjectives[int(b[0])%len(adjectives)] + "_" + nouns[int(b[1])%len(nouns)]
		if i > 10 {
			n += "_" + string(b[2:6])
		}
		if _, ok := a.names[n]; !ok {
			return n
		}
	}
}

// startRun runs a created or exited container: for the user (restartOf
// -1; start in restart.go), or for its restart policy after the run of
// generation restartOf, unless the restart was cancelled since.
func (a *Agent) startRun(c *Container, restartOf int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if restartOf >= 0 && (!c.State.Restarting || c.State.Generation != restartOf) {
		return errNotModified
	}
	switch c.State.Status {
	case "running":
		return errNotModified
	case "removing", "dead", "gone":
		return kindErr(errConflict, "container %s is marked for removal and cannot be started", c.ID)
	}
	t0 := time.Now()
	vm := a.startVolumeMounts(c)
	rootfs := a.warmRootfs(c)
	var err error
	if rootfs == "" {
		rootfs, err = a.store.Mount(c.ID)
	}
	if err != nil {
		vm.release(a, c)
		return fmt.Errorf("mount container root: %w", err)
	}
	a.log.Debug("mounted", "id", c.ID, "took", time.Since(t0))
	vmounts, err := a.mountVolumes(c, rootfs, vm)
	var pid int
	if err == nil {
		var ns *netSetup
		ns, err = a.setupNetwork(context.Background(), c)
		if err == nil {
			pid, err = a.launch(c, rootfs, ns, vmounts)
			if err != nil {
				_ = ns.drain()
				a.teardownNetwork(c)
			}
		}
		if err != nil {
			a.unmountVolumes(c.ID, c.Mounts)
		}
	}
	a.log.Debug("launched", "id", c.ID, "took", time.Since(t0))
	if err != nil {
		for _, p := range c.attachers {
			p.ready <- attachResult{err: err}
		}
		c.attachers = nil
		a.removeCgroups(c.ID)
		_ = a.store.Unmount(c.ID, false)
		// As docker: the failed start counts as a run that exited with
		// 127 (not found), 126 (cannot invoke) or 128, for waiters.
		c.State.Error = err.Error()
		c.State.ExitCode = 128
		switch {
		case errors.Is(err, errNoCommand):
			c.State.ExitCode = 127
		case errors.Is(err, errCannotRun):
			c.State.ExitCode = 126
		}
		c.State.FinishedAt = time.Now().UTC()
		c.State.Generation++
		_ = a.save(c)
		c.notify()
		if c.State.ExitCode != 128 {
			// The command was at fault, not the options: the next
			// container of them may well run.
			a.prepareWarm(c)
		}
		return &startError{err: err}
	}
	c.Rootfs = rootfs
	c.State = State{Status: "running", Pid: pid, StartedAt: time.Now().UTC(), Generation: c.State.Generation + 1,
		RestartCount: c.State.RestartCount, ManuallyStopped: c.State.ManuallyStopped, Health: c.State.Health}
	a.startHealth(c)
	if err := a.save(c); err != nil {
		a.log.Error("save state", "id", c.ID, "error", err)
	}
	c.notify()
	go a.watch(c, c.State.Generation)
	a.containerEventLocked(c, events.ActionStart, nil)
	a.prepareWarm(c)
	return nil
}

// startError marks a failure to start the container's process (as opposed
// to "already running"), after which --rm removes the container.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// startOrRemove starts c; when that fails and c was created with --rm, it
// removes c before answering, as docker does.
func (a *Agent) startOrRemove(c *Container) error {
	err := a.start(c)
	var se *startError
	if errors.As(err, &se) && c.HostConfig.AutoRemove {
		if rerr := a.remove(c, removal{later: true, volumes: true}); rerr != nil {
			a.log.Warn("auto-remove after failed start", "id", c.ID, "error", rerr)
		}
	}
	return err
}

// launch writes the bundle and starts the shim; the container's process runs
// once pending attach streams are connected.
func (a *Agent) launch(c *Container, rootfs string, ns *netSetup, mounts []specs.Mount) (int, error) {
	if w := c.warm; w != nil {
		c.warm = nil
		if pid, ok, err := a.launchWarm(c, w, rootfs, ns, mounts); ok {
			return pid, err
		}
	}
	b := a.bundle(c.ID)
	s, err := a.writeBundle(c.ID, c.Config, c.HostConfig, rootfs, ns, mounts)
	if err != nil {
		return 0, err
	}
	if _, err := a.prepareCgroups(c.ID, c.HostConfig); err != nil {
		return 0, err
	}
	if err := writeSpec(b, s); err != nil {
		return 0, err
	}
	_ = os.Remove(filepath.Join(b, shim.ExitFile))
	sock := a.socket(c.ID)
	a.log.Debug("bundle written", "id", c.ID)
	pid, err := a.launcher.Spawn(a.shimOptions(c.ID, c.Config, c.HostConfig))
	if err != nil {
		a.launcher.Refill()
		return 0, runError(err)
	}
	a.log.Debug("shim ready", "id", c.ID)
	tw := time.Now()
	if err := ns.wait(filepath.Join(b, "etc")); err != nil {
		_ = shim.Kill(sock, syscall.SIGKILL)
		a.launcher.Refill()
		return 0, err
	}
	// What the network adds to the start: the wait for what was not done
	// while libcontainer created the container.
	a.log.Debug("network ready", "id", c.ID, "waited", time.Since(tw))
	a.connectAttachers(c, sock)
	_, err = shim.Start(sock)
	a.launcher.Refill()
	if ns.netns != "" && ns.netns != spec.HostNetNS && ns.etcDir == "" {
		a.spareNetNS.Refill()
	}
	if err != nil {
		_ = shim.Kill(sock, syscall.SIGKILL)
		return 0, runError(err)
	}
	return pid, nil
}

// connectAttachers connects the attach streams that wait for c's start to
// its shim at sock.
func (a *Agent) connectAttachers(c *Container, sock string) {
	for _, p := range c.attachers {
		conn, err := shim.Attach(sock, p.stdin, p.stdout, p.stderr)
		p.ready <- attachResult{conn: conn, err: err}
	}
	c.attachers = nil
}

// writeBundle writes the container id's /etc files into its bundle and
// returns its spec.
func (a *Agent) writeBundle(id string, cfg *container.Config, h *container.HostConfig, rootfs string, ns *netSetup, mounts []specs.Mount) (*specs.Spec, error) {
	etc := filepath.Join(a.bundle(id), "etc")
	if err := spec.WriteEtc(etc, ns.etc); err != nil {
		return nil, err
	}
	if ns.etcDir != "" {
		etc = ns.etcDir
	}
	s, err := spec.Build(spec.Input{
		ID: id, Rootfs: rootfs, Config: cfg, Host: h, EtcDir: etc,
		SingleID: a.singleID, Seccomp: a.cfg.Runtime.SeccompEnabled(), Seccomp32: a.cfg.Runtime.Seccomp32,
		InitBinary: a.initBinary, NetNS: ns.netns, MaxGID: a.maxGID, Mounts: mounts,
	})
	if err != nil {
		if errors.Is(err, spec.ErrInvalid) {
			return nil, kindErr(errInvalid, "%s", err.Error())
		}
		return nil, err
	}
	return s, nil
}

// writeSpec writes s as the spec the bundle's shim reads.
func writeSpec(bundle string, s *specs.Spec) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, shim.SpecFile), data, 0o600)
}

// shimOptions are the options of container id's shim.
func (a *Agent) shimOptions(id string, cfg *container.Config, h *container.HostConfig) shim.Options {
	maxSize, maxFiles := logLimits(h.LogConfig.Config)
	return shim.Options{
		ID: id, Bundle: a.bundle(id), RuncRoot: a.dirs.RuncRoot(), Socket: a.socket(id),
		LogMaxSize: maxSize, LogMaxFiles: maxFiles,
		Stdin: cfg.OpenStdin, StdinOnce: cfg.StdinOnce,
		ConsoleHeight: uint16(h.ConsoleSize[0]), ConsoleWidth: uint16(h.ConsoleSize[1]),
	}
}

// runError classifies a failure to run the container's command as docker
// does: 127 when it does not exist, 126 when it cannot be invoked.
func runError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		return kindErr(errNoCommand, "failed to create task for container: %s", msg)
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "exec format error"):
		return kindErr(errCannotRun, "failed to create task for container: %s", msg)
	}
	return err
}

func logLimits(opts map[string]string) (int64, int) {
	size := int64(0)
	if v := opts["max-size"]; v != "" {
		size = parseSize(v)
	}
	files := 1
	if v := opts["max-file"]; v != "" {
		fmt.Sscanf(v, "%d", &files)
	}
	return size, files
}

// parseSize reads docker's log sizes ("512", "10k", "10m", "1g"); it
// returns 0 for anything else.
func parseSize(v string) int64 {
	v = strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for suffix, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			mult, v = m, strings.TrimSuffix(v, suffix)
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n * mult
}

// watch waits for the container of generation gen to exit.
func (a *Agent) watch(c *Container, gen int) {
	st, _ := shim.Wait(a.socket(c.ID), a.bundle(c.ID))
	a.log.Debug("exited", "id", c.ID)
	a.finish(c, gen, st)
}

// finish records the exit of generation gen (st is nil when the shim left
// no status), unmounts the root file system and removes the container when
// it was started with --rm.
func (a *Agent) finish(c *Container, gen int, st *shim.ExitStatus) {
	c.mu.Lock()
	if c.State.Generation != gen || (c.State.Status != "running" && c.State.Status != "removing") {
		c.mu.Unlock()
		return
	}
	if st == nil {
		c.State.ExitCode = 255
		c.State.Error = "container supervisor ended without an exit status"
		c.State.FinishedAt = time.Now().UTC()
	} else {
		c.State.ExitCode, c.State.OOMKilled, c.State.FinishedAt = st.Code, st.OOMKilled, st.FinishedAt
		c.State.Error = st.Error
	}
	if c.State.Status != "removing" {
		c.State.Status = "exited"
	}
	c.State.Pid = 0
	c.State.Paused = false
	c.Rootfs = ""
	a.removeCgroups(c.ID)
	restartIn, restart := a.policyAfterExit(c)
	auto := c.HostConfig.AutoRemove && c.State.Status == "exited"
	if auto {
		// Removed next: its volumes are released in the background.
		a.unmountLater(c.ID, c.Mounts)
		a.teardownNetwork(c)
	} else {
		// The volumes' drivers and the network's, at the same time.
		unmounted := make(chan struct{})
		go func() {
			defer close(unmounted)
			a.unmountVolumes(c.ID, c.Mounts)
		}()
		a.teardownNetwork(c)
		<-unmounted
	}
	_ = os.Remove(a.socket(c.ID))
	if !auto {
		a.settle(c)
	}
	c.notify()
	code := strconv.Itoa(c.State.ExitCode)
	oom := c.State.OOMKilled
	c.mu.Unlock()
	if oom {
		a.containerEvent(c, events.ActionOOM, nil)
	}
	a.containerEvent(c, events.ActionDie, map[string]string{"exitCode": code})
	if restart {
		a.restartLater(c, gen, restartIn)
	}
	if auto {
		// Removal unmounts and deletes the layer; the metadata is only
		// written when that fails. As docker, --rm takes the anonymous
		// volumes along.
		if err := a.remove(c, removal{later: true, volumes: true}); err != nil {
			a.log.Warn("auto-remove", "id", c.ID, "error", err)
			c.mu.Lock()
			a.settle(c)
			c.mu.Unlock()
		}
	}
}

// settle unmounts a stopped container's root and records its state.
// Callers hold c.mu.
func (a *Agent) settle(c *Container) {
	if err := a.store.Unmount(c.ID, true); err != nil {
		a.log.Warn("unmount container root", "id", c.ID, "error", err)
	}
	if err := a.save(c); err != nil {
		a.log.Error("save state", "id", c.ID, "error", err)
	}
}

// stopSignal is the container's, the image's, or SIGTERM.
func (c *Container) stopSignal() syscall.Signal {
	if s, err := spec.Signal(c.Config.StopSignal); err == nil {
		return s
	}
	return syscall.SIGTERM
}

// kill sends sig to a running container.
func (a *Agent) kill(c *Container, sig syscall.Signal) error {
	c.mu.Lock()
	running := c.State.Status == "running"
	if running {
		c.userStopped(sig, false)
	}
	c.mu.Unlock()
	if !running {
		return kindErr(errConflict, "Cannot kill container: %s: Container %s is not running", c.ID, c.ID)
	}
	if err := shim.Kill(a.socket(c.ID), sig); err != nil {
		return err
	}
	a.containerEvent(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if sig == syscall.SIGKILL {
		a.thawKilled(c)
	}
	return nil
}

// thawKilled thaws a paused container that was sent SIGKILL, as docker:
// a frozen process does not die (cgroup v1), and the container is gone
// anyway. Other signals wait for unpause.
func (a *Agent) thawKilled(c *Container) {
	c.mu.Lock()
	paused := c.State.Paused
	c.mu.Unlock()
	if !paused {
		return
	}
	if err := cgroup.Thaw(a.cgroupPaths(c.ID)); err != nil {
		a.log.Warn("thaw killed container", "id", c.ID, "error", err)
		return
	}
	a.containerEvent(c, events.ActionUnPause, nil)
}

// stop signals the container and kills it after timeout.
func (a *Agent) stop(c *Container, sig syscall.Signal, timeout time.Duration) error {
	c.mu.Lock()
	if c.State.Status != "running" {
		cancelled := c.userStopped(sig, true)
		if cancelled {
			if err := a.save(c); err != nil {
				a.log.Error("save state", "id", c.ID, "error", err)
			}
			c.notify()
		}
		c.mu.Unlock()
		if cancelled {
			return nil
		}
		return errNotModified
	}
	c.userStopped(sig, true)
	gen := c.State.Generation
	c.mu.Unlock()
	if sig == 0 {
		sig = c.stopSignal()
	}
	if err := shim.Kill(a.socket(c.ID), sig); err != nil && !errors.Is(err, shim.ErrGone) {
		a.log.Debug("stop signal", "id", c.ID, "error", err)
	} else {
		a.containerEvent(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	}
	exited := func(st State) bool { return st.Generation != gen || st.Status != "running" }
	if timeout < 0 || !a.waitFor(c, exited, timeout) {
		_ = shim.Kill(a.socket(c.ID), syscall.SIGKILL)
		a.containerEvent(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(syscall.SIGKILL))})
		a.thawKilled(c)
		a.waitFor(c, exited, 30*time.Second)
	}
	a.containerEvent(c, events.ActionStop, nil)
	return nil
}

// waitFor waits up to timeout for done and reports whether it held.
func (a *Agent) waitFor(c *Container, done func(State) bool, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a.waitUntil(ctx, c, done)
	c.mu.Lock()
	defer c.mu.Unlock()
	return done(c.State)
}

// removal says how remove removes a container.
type removal struct {
	// force stops a running container first.
	force bool
	// later (the auto-removal of --rm containers) deletes the layer in
	// the background once the container is gone from the agent
	// (reap.go): its unmount and containers/storage's synced metadata
	// writes took 10-15 ms of every `run --rm`.
	later bool
	// volumes removes its anonymous volumes too (rm -v, run --rm).
	volumes bool
}

// remove deletes a container, its layer and its files.
func (a *Agent) remove(c *Container, how removal) error {
	force, later := how.force, how.later
	c.mu.Lock()
	status := c.State.Status
	c.mu.Unlock()
	if status == "running" {
		if !force {
			return kindErr(errConflict, "You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.ID)
		}
		if err := a.stop(c, syscall.SIGKILL, 0); err != nil && !errors.Is(err, errNotModified) {
			return err
		}
	}
	c.mu.Lock()
	if c.State.Status == "removing" || c.State.Status == "gone" {
		c.mu.Unlock()
		return nil
	}
	prev := c.State.Status
	c.State.Status = "removing"
	a.releaseWarm(c)
	c.mu.Unlock()
	t0 := time.Now()
	defer func() { a.log.Debug("removed", "id", c.ID, "took", time.Since(t0), "layer_later", later) }()
	dirs := a.containerFiles(c.ID)
	if later {
		a.deleteLater(c.ID, dirs)
	} else if err := a.store.DeleteContainer(c.ID); err != nil && a.store.ContainerExists(c.ID) {
		c.mu.Lock()
		c.State.Status = prev
		c.mu.Unlock()
		return fmt.Errorf("remove container layer: %w", err)
	} else {
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				a.log.Warn("remove container files", "id", c.ID, "error", err)
			}
		}
	}
	a.forgetExecs(c)
	var anon []string
	if how.volumes {
		anon = a.anonymousVolumes(c)
	}
	a.mu.Lock()
	delete(a.containers, c.ID)
	if a.names[c.Name] == c.ID {
		delete(a.names, c.Name)
	}
	a.mu.Unlock()
	// Before waiters learn of the removal, as docker.
	a.removeAnonymous(anon)
	a.containerEvent(c, events.ActionDestroy, nil)
	c.mu.Lock()
	c.State.Status = "gone"
	close(c.removed)
	c.notify()
	c.mu.Unlock()
	return nil
}

// pendingAttach is an attach request that arrived before the start.
type pendingAttach struct {
	stdin, stdout, stderr bool
	ready                 chan attachResult
}

type attachResult struct {
	conn *shim.AttachConn
	err  error
}

// attach returns a stream of the container's output (and, with stdin, the
// way to its input): at once for a running container, at the next start for
// a created or exited one.
func (a *Agent) attach(c *Container, stdin, stdout, stderr bool) (func() (*shim.AttachConn, error), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stdin && !c.Config.OpenStdin {
		stdin = false // as docker: no input for a container without -i
	}
	if c.State.Status == "running" {
		conn, err := shim.Attach(a.socket(c.ID), stdin, stdout, stderr)
		return func() (*shim.AttachConn, error) { return conn, err }, nil
	}
	p := &pendingAttach{stdin: stdin, stdout: stdout, stderr: stderr, ready: make(chan attachResult, 1)}
	c.attachers = append(c.attachers, p)
	removed := c.removed
	return func() (*shim.AttachConn, error) {
		select {
		case r := <-p.ready:
			return r.conn, r.err
		case <-removed:
			return nil, errors.New("container removed")
		}
	}, nil
}
