package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/agent/spec"
)

// Warm starts. After a container starts, the agent makes the next one in
// advance, from the same image and options: its layer, its mounted root,
// its bundle, its cgroups, a network namespace (with its endpoint, on the
// default network), and its shim, which has libcontainer create the
// container and run its first process, the stub (internal/warmstub), up to
// where the command would be executed; the shim hands over to the C
// supervisor at once. A create of that image and configuration (warmConfig)
// claims it once it is ready (the new container takes its ID and layer);
// its start compares the spec it would build with the warm one's, all but
// the command's arguments and environment, and on a match the supervisor
// gives the stub the command, which replaces it as PID 1. Anything else (a
// mount, a terminal, other limits or capabilities, another user or working
// directory) starts cold, with the layer kept. Only one is kept, for the
// last image and configuration started; `[runtime] warm_starts = false`
// turns them off.

// warmMarker marks the bundle of a warm container no container has
// claimed, and holds the path of its network namespace (if any); a
// restarted agent removes it (loadContainers).
const warmMarker = "warm"

type warmKey struct {
	imageID  string
	volatile bool // a --rm container's layer (storage.CreateContainer)
	// config is warmConfig's: a create claims only a warm container made
	// for the same, so that one whose start would not match is left for
	// one whose would.
	config string
}

// warmConfig is what of a container's configuration its spec, cgroups
// and shim options depend on, but for its command (hostname "" for the
// default, its ID's): containers alike in it may share a warm container.
// The start still compares the specs themselves.
func warmConfig(cfg *container.Config, host *container.HostConfig, hostname string) string {
	c := container.Config{
		User: cfg.User, WorkingDir: cfg.WorkingDir, Tty: cfg.Tty, OpenStdin: cfg.OpenStdin,
		StdinOnce: cfg.StdinOnce, Hostname: hostname, Domainname: cfg.Domainname,
	}
	return string(mustJSON(struct {
		C container.Config
		H *container.HostConfig
	}{c, host}))
}

// warmTemplate is what a warm container is made from: the configuration of
// the container whose start asked for it.
type warmTemplate struct {
	cfg  container.Config
	host container.HostConfig
	// defaultHostname: the template's hostname was its ID's, so the warm
	// container's is its own.
	defaultHostname bool
	// isolated: a network namespace of its own (bridge networks); else
	// none, or the host's.
	isolated bool
	// networks are the template's endpoint settings (before connecting).
	networks map[string]*network.EndpointSettings
}

type warmContainer struct {
	id  string
	key warmKey
	tpl warmTemplate
	// layer closes once the layer exists, ready once the shim answered;
	// err is set before either closes when making it failed.
	layer, ready chan struct{}
	err          error
	rootfs       string
	netns        string
	// spec is the warm spec without the command; cgroups its cgroups.
	spec    []byte
	cgroups []byte
	opts    shim.Options
	// net is its endpoint on the default network, made in advance
	// (warmNet); nil when its start connects.
	net *warmNet
}

// warmNet is a warm container's endpoints, made with it: on the default
// bridge network only (whose endpoints have no DNS names, so the name of
// the container that takes it does not matter), without published ports.
// Kept in the bundle (warmNetFile) until a start takes it over, for a
// restarted agent to disconnect.
type warmNet struct {
	NetNS      string                               `json:"netns"`
	Networks   map[string]*network.EndpointSettings `json:"networks"`
	Interfaces map[string]string                    `json:"interfaces"`
	DNS        []string                             `json:"dns,omitempty"`
	DNSSearch  []string                             `json:"dns_search,omitempty"`
	DNSOptions []string                             `json:"dns_options,omitempty"`
	Addresses  []string                             `json:"addresses,omitempty"`
}

const warmNetFile = "warm-net.json"

// warmPool holds the one warm container.
type warmPool struct {
	mu     sync.Mutex
	w      *warmContainer
	closed bool
}

// warmEligible says whether a start of c may be made warm next time: no
// terminal, no mounts, and no other container's network namespace.
func (a *Agent) warmEligible(c *Container) bool {
	return !c.noWarm && a.warmable(c.Config, c.HostConfig, len(c.Mounts))
}

// warmable says whether a container of cfg and host with that many mounts
// may start warm (a create claims a warm container only then).
func (a *Agent) warmable(cfg *container.Config, host *container.HostConfig, mounts int) bool {
	return a.cfg.Runtime.WarmStartsEnabled() && !cfg.Tty && mounts == 0 && !strings.HasPrefix(string(host.NetworkMode), "container:")
}

// prepareWarm makes the next warm container from c, which just started,
// unless one for its image and options is there already. Callers hold c.mu.
func (a *Agent) prepareWarm(c *Container) {
	if !a.warmEligible(c) {
		return
	}
	hostname := c.Config.Hostname
	if hostname == c.ID[:12] {
		hostname = ""
	}
	key := warmKey{imageID: c.ImageID, volatile: c.HostConfig.AutoRemove, config: warmConfig(c.Config, c.HostConfig, hostname)}
	p := &a.warm
	p.mu.Lock()
	if p.closed || (p.w != nil && p.w.key == key) {
		p.mu.Unlock()
		return
	}
	old := p.w
	w := &warmContainer{
		id: newID(), key: key, layer: make(chan struct{}), ready: make(chan struct{}),
		tpl: warmTemplate{
			cfg: *c.Config, host: *c.HostConfig, isolated: c.NetNS != "",
			defaultHostname: c.Config.Hostname == c.ID[:12], networks: templateNetworks(c.Networks),
		},
	}
	p.w = w
	p.mu.Unlock()
	go func() {
		if old != nil {
			a.discardWarm(old)
		}
		a.makeWarm(w)
	}()
}

// claimWarm hands the warm container for key to a container being created,
// once its layer exists; nil when there is none (or making it failed).
func (a *Agent) claimWarm(key warmKey) *warmContainer {
	p := &a.warm
	p.mu.Lock()
	w := p.w
	if w == nil || w.key != key || !closed(w.ready) {
		p.mu.Unlock()
		return nil
	}
	p.w = nil
	p.mu.Unlock()
	<-w.layer
	if w.err != nil {
		return nil
	}
	_ = os.Remove(filepath.Join(a.bundle(w.id), warmMarker))
	return w
}

// makeWarm makes w: its layer, root, bundle, cgroups and shim.
func (a *Agent) makeWarm(w *warmContainer) {
	t0 := time.Now()
	layerDone := false
	fail := func(err error) {
		w.err = err
		if !layerDone {
			close(w.layer)
		}
		close(w.ready)
		a.log.Debug("warm container failed", "id", w.id, "error", err)
	}
	if err := a.store.CreateContainer(w.id, w.key.imageID, w.key.volatile); err != nil {
		fail(err)
		return
	}
	b := a.bundle(w.id)
	if err := os.MkdirAll(b, 0o700); err != nil {
		fail(err)
		return
	}
	if err := os.WriteFile(filepath.Join(b, warmMarker), nil, 0o600); err != nil {
		fail(err)
		return
	}
	layerDone = true
	close(w.layer)
	// From here on, a container may have claimed w: it starts cold if w
	// fails, with its layer.
	rootfs, err := a.store.Mount(w.id)
	if err != nil {
		fail(err)
		return
	}
	w.rootfs = rootfs
	cfg, host := w.tpl.cfg, w.tpl.host
	if w.tpl.defaultHostname {
		cfg.Hostname = w.id[:12]
	}
	ns := &netSetup{etc: spec.Etc{Hostname: cfg.Hostname}}
	switch {
	case w.tpl.isolated:
		if ns.netns, err = a.takeNetNS(w.id); err != nil {
			fail(err)
			return
		}
		w.netns = ns.netns
		a.spareNetNS.Refill()
		_ = os.WriteFile(filepath.Join(b, warmMarker), []byte(w.netns), 0o600)
		if w.net, err = a.connectWarm(w, &cfg, &host); err != nil {
			fail(err)
			return
		}
	case host.NetworkMode == "host":
		ns.netns, ns.etc.HostFiles = spec.HostNetNS, true
	}
	s, err := a.writeBundle(w.id, &cfg, &host, rootfs, ns, nil)
	if err != nil {
		fail(err)
		return
	}
	cs, err := a.prepareCgroups(w.id, &host)
	if err != nil {
		fail(err)
		return
	}
	if err := writeSpec(b, s); err != nil {
		fail(err)
		return
	}
	w.spec, w.cgroups = warmSpecKey(s), mustJSON(cs)
	w.opts = a.shimOptions(w.id, &cfg, &host)
	opts := w.opts
	opts.Warm = true
	_, err = a.launcher.Spawn(opts)
	a.launcher.Refill()
	if err != nil {
		fail(err)
		return
	}
	close(w.ready)
	a.log.Debug("warm container ready", "id", w.id, "took", time.Since(t0))
}

// templateNetworks copies a container's endpoint settings as they were
// asked for (without what a driver gave).
func templateNetworks(in map[string]*network.EndpointSettings) map[string]*network.EndpointSettings {
	out := map[string]*network.EndpointSettings{}
	for name, es := range in {
		out[name] = &network.EndpointSettings{IPAMConfig: es.IPAMConfig, Aliases: es.Aliases, DriverOpts: es.DriverOpts, Links: es.Links, MacAddress: es.MacAddress}
		if es.IPAMConfig == nil {
			out[name].MacAddress = nil
		}
	}
	return out
}

// plainDefaultNetwork says whether nets are the default network alone, with
// nothing asked of the endpoint.
func plainDefaultNetwork(nets map[string]*network.EndpointSettings) bool {
	es, ok := nets["bridge"] // the default network
	return ok && len(nets) == 1 && es.IPAMConfig == nil && len(es.Aliases) == 0 && len(es.DriverOpts) == 0 && len(es.Links) == 0 && len(es.MacAddress) == 0
}

// connectWarm makes w's endpoint on the default network in advance, when
// its template is on that network alone and publishes no ports; nil
// otherwise (the start connects).
func (a *Agent) connectWarm(w *warmContainer, cfg *container.Config, host *container.HostConfig) (*warmNet, error) {
	nets := templateNetworks(w.tpl.networks)
	// A stand-in for the container, as connect takes one.
	sc := &Container{ID: w.id, Config: cfg, HostConfig: host, NetNS: w.netns, Networks: nets, Interfaces: map[string]string{}}
	if !plainDefaultNetwork(nets) || len(portBindings(sc)) > 0 {
		return nil, nil
	}
	etc := hostEtc(cfg.Hostname, host)
	if err := a.connectAll(context.Background(), sc, &etc); err != nil {
		return nil, err
	}
	wn := &warmNet{NetNS: w.netns, Networks: sc.Networks, Interfaces: sc.Interfaces,
		DNS: etc.DNS, DNSSearch: etc.DNSSearch, DNSOptions: etc.DNSOptions, Addresses: etc.Addresses}
	if err := os.WriteFile(filepath.Join(a.bundle(w.id), warmNetFile), mustJSON(wn), 0o600); err != nil {
		a.disconnectWarm(w.id, wn)
		return nil, err
	}
	return wn, nil
}

// disconnectWarm removes the endpoints wn of the warm container id.
func (a *Agent) disconnectWarm(id string, wn *warmNet) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc := &Container{ID: id, NetNS: wn.NetNS, Networks: wn.Networks, Interfaces: wn.Interfaces}
	for name, es := range wn.Networks {
		a.disconnect(ctx, sc, name, es)
	}
	_ = os.Remove(filepath.Join(a.bundle(id), warmNetFile))
}

// takeWarmNet gives c the endpoints its warm container made, when c is on
// the same networks as they were made for; it reports whether it did (else
// they are removed, and c's start connects). Callers hold c.mu.
func (a *Agent) takeWarmNet(c *Container, etc *spec.Etc) bool {
	w := c.warm
	if w == nil || w.net == nil {
		return false
	}
	wn := w.net
	w.net = nil
	if !plainDefaultNetwork(c.Networks) || len(portBindings(c)) > 0 || wn.NetNS != c.NetNS {
		a.disconnectWarm(w.id, wn)
		return false
	}
	for name, made := range wn.Networks {
		es := c.Networks[name]
		es.NetworkID, es.EndpointID = made.NetworkID, made.EndpointID
		es.IPAddress, es.IPPrefixLen, es.Gateway, es.MacAddress = made.IPAddress, made.IPPrefixLen, made.Gateway, made.MacAddress
		es.DNSNames = append([]string{c.Name, c.ID[:12]}, es.Aliases...)
	}
	c.Interfaces = wn.Interfaces
	if len(etc.DNS) == 0 {
		etc.DNS, etc.DNSSearch, etc.DNSOptions = wn.DNS, wn.DNSSearch, wn.DNSOptions
	}
	etc.Addresses = wn.Addresses
	_ = os.Remove(filepath.Join(a.bundle(c.ID), warmNetFile))
	return true
}

// warmSpecKey is s without what the stub sets: the command's arguments and
// environment.
func warmSpecKey(s *specs.Spec) []byte {
	cp := *s
	if s.Process != nil {
		p := *s.Process
		p.Args, p.Env = nil, nil
		cp.Process = &p
	}
	return mustJSON(&cp)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// launchWarm starts c in its warm container w when what c's start would
// build is what w was made with; ok is false when c is to start cold (w is
// gone then, its layer and network namespace kept for c).
func (a *Agent) launchWarm(c *Container, w *warmContainer, rootfs string, ns *netSetup, mounts []specs.Mount) (pid int, ok bool, err error) {
	<-w.ready
	cold := func() (int, bool, error) {
		a.dropWarmShim(w)
		if w.netns != "" && w.netns != c.NetNS {
			dropNetNS(w.netns)
		}
		return 0, false, nil
	}
	if w.err != nil || rootfs != w.rootfs {
		return cold()
	}
	b := a.bundle(c.ID)
	s, err := a.writeBundle(c.ID, c.Config, c.HostConfig, rootfs, ns, mounts)
	if err != nil {
		a.dropWarmShim(w)
		return 0, true, err
	}
	// The warm container's record is this one's on a match.
	cs, err := a.cgroupsOf(c.ID, c.HostConfig)
	if err != nil {
		a.dropWarmShim(w)
		return 0, true, err
	}
	if !bytes.Equal(warmSpecKey(s), w.spec) || !bytes.Equal(mustJSON(cs), w.cgroups) || a.shimOptions(c.ID, c.Config, c.HostConfig) != w.opts {
		a.log.Debug("warm container does not match", "id", c.ID)
		return cold()
	}
	// (The bundle keeps the warm spec: only the shim read it.)
	sock := a.socket(c.ID)
	tw := time.Now()
	if err := ns.wait(filepath.Join(b, "etc")); err != nil {
		_ = shim.Kill(sock, syscall.SIGKILL)
		return 0, true, err
	}
	a.log.Debug("network ready", "id", c.ID, "waited", time.Since(tw))
	a.connectAttachers(c, sock)
	pid, err = shim.StartCommand(sock, s.Process.Args, s.Process.Env)
	if err != nil {
		_ = shim.Kill(sock, syscall.SIGKILL)
		return 0, true, runError(err)
	}
	a.log.Debug("started warm", "id", c.ID)
	return pid, true, nil
}

// dropWarmShim ends w's shim and waits until it has cleaned up (its
// libcontainer state is gone), so that a cold start can use the ID.
func (a *Agent) dropWarmShim(w *warmContainer) {
	<-w.ready
	if w.err == nil {
		a.endWarmShim(w.id)
	}
}

// endWarmShim kills the shim of the warm container id and waits until it
// is gone with its libcontainer state.
func (a *Agent) endWarmShim(id string) {
	sock := a.socket(id)
	if err := shim.Kill(sock, syscall.SIGKILL); err != nil && !errors.Is(err, shim.ErrGone) {
		a.log.Warn("end warm container", "id", id, "error", err)
	}
	state := filepath.Join(a.dirs.RuncRoot(), id)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(sock); err != nil {
			if _, err := os.Stat(state); err != nil {
				return
			}
		}
	}
	a.log.Warn("warm container's shim did not end", "id", id)
}

// discardWarm removes a warm container no container claimed.
func (a *Agent) discardWarm(w *warmContainer) {
	<-w.ready
	a.dropWarmShim(w)
	if w.net != nil {
		a.disconnectWarm(w.id, w.net)
	}
	a.removeCgroups(w.id)
	if w.netns != "" {
		dropNetNS(w.netns)
	}
	_ = a.store.Unmount(w.id, true)
	a.deleteLater(w.id, a.containerFiles(w.id))
}

// closeWarm discards the warm container and makes no more (shutdown).
func (a *Agent) closeWarm() { a.dropWarm(true) }

// dropWarm discards the warm container, if any; with closing, no more are
// made.
func (a *Agent) dropWarm(closing bool) {
	p := &a.warm
	p.mu.Lock()
	w := p.w
	p.w = nil
	p.closed = p.closed || closing
	p.mu.Unlock()
	if w != nil {
		a.discardWarm(w)
	}
}

// releaseWarm ends the warm container of c, claimed but not started
// (removal). Callers hold c.mu.
func (a *Agent) releaseWarm(c *Container) {
	w := c.warm
	if w == nil {
		return
	}
	c.warm = nil
	a.dropWarmShim(w)
	if w.net != nil {
		a.disconnectWarm(w.id, w.net)
	}
	if w.netns != "" {
		dropNetNS(w.netns)
	}
	a.removeCgroups(c.ID)
}

// warmRootfs is the root of c's warm container, mounted already ("" when
// c has none). Callers hold c.mu.
func (a *Agent) warmRootfs(c *Container) string {
	if c.warm == nil {
		return ""
	}
	<-c.warm.ready
	return c.warm.rootfs
}

// warmNetNS is the network namespace of c's warm container, if it has
// one, for c's start. Callers hold c.mu.
func (c *Container) warmNetNS() string {
	if c.warm == nil {
		return ""
	}
	<-c.warm.ready
	if c.warm.err != nil {
		return ""
	}
	return c.warm.netns
}

// releaseImages lets images be removed: it discards the warm container
// (another is made at the next start) and waits for the layers of removed
// containers to be deleted.
func (a *Agent) releaseImages() {
	a.dropWarm(false)
	a.waitLayersDeleted()
}

// clearWarm removes, at the agent's start, what warm containers of an
// earlier agent left: unclaimed ones (their bundle has the marker; their
// layer goes with deleteOrphans) and the shims of claimed ones that were
// never started.
func (a *Agent) clearWarm(id string, claimed bool) {
	if len(id) < 16 {
		return // not a container's directory
	}
	if _, err := os.Stat(a.socket(id)); err == nil {
		a.endWarmShim(id)
	}
	var wn warmNet
	if b, err := os.ReadFile(filepath.Join(a.bundle(id), warmNetFile)); err == nil && json.Unmarshal(b, &wn) == nil {
		a.disconnectWarm(id, &wn)
		if claimed && wn.NetNS != "" {
			dropNetNS(wn.NetNS)
		}
	}
	if !claimed {
		if ns, err := os.ReadFile(filepath.Join(a.bundle(id), warmMarker)); err == nil && len(ns) > 0 {
			dropNetNS(string(ns))
		}
		a.removeCgroups(id)
		_ = a.store.Unmount(id, true)
		a.deleteLater(id, a.containerFiles(id))
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
