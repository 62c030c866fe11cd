package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/agent/spec"
	"github.com/moss-containers/moss/plugins"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// publishedPort is one port forward of a running container, held by the
// rootless port driver (rootlesskit's, in the namespace holder).
type publishedPort struct {
	ID       int    `json:"id"`
	Port     string `json:"port"` // container side: 80/tcp
	HostIP   string `json:"host_ip"`
	HostPort int    `json:"host_port"`
}

// netMode is how a container's network namespace is chosen.
type netMode struct {
	// driver is the network driver's capability, or CONTAINER.
	ns networkv1.Namespace
	// other is the container whose namespace a container: mode joins.
	other string
}

// resolveNetworks turns the network mode and endpoint settings of a create
// request into the container's networks, checking them as docker does.
func (a *Agent) resolveNetworks(cfg *container.Config, host *container.HostConfig, nc *network.NetworkingConfig) (map[string]*network.EndpointSettings, error) {
	mode := string(host.NetworkMode)
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	var endpoints map[string]*network.EndpointSettings
	if nc != nil {
		endpoints = nc.EndpointsConfig
	}
	if other, ok := strings.CutPrefix(mode, "container:"); ok {
		if other == "" {
			return nil, kindErr(errInvalid, "invalid network mode %q: want container:NAME or container:ID", mode)
		}
		if _, err := a.lookup(other); err != nil {
			return nil, err
		}
		if cfg.Hostname != "" {
			return nil, kindErr(errInvalid, "conflicting options: hostname and the network mode")
		}
		if len(host.PortBindings) > 0 || host.PublishAllPorts || len(cfg.ExposedPorts) > 0 {
			return nil, kindErr(errInvalid, "conflicting options: port publishing and the container type network mode")
		}
		if len(host.DNS) > 0 || len(host.ExtraHosts) > 0 {
			return nil, kindErr(errInvalid, "conflicting options: dns and the network mode")
		}
		return map[string]*network.EndpointSettings{}, nil
	}
	n, err := a.lookupNetwork(mode)
	if err != nil {
		return nil, err
	}
	if n.Name == "host" || n.Name == "none" {
		host.NetworkMode = container.NetworkMode(n.Name)
		return map[string]*network.EndpointSettings{n.Name: {NetworkID: n.ID}}, nil
	}
	host.NetworkMode = container.NetworkMode(n.Name)
	// The network mode's network, and any further ones (API ≥ 1.44 takes
	// several at create); docker's CLI keys the first "default" when the
	// user named none.
	nets := map[string]*network.EndpointSettings{n.Name: {}}
	for key, e := range endpoints {
		target := n
		if key != "default" && key != "" && key != n.Name && key != n.ID && !strings.HasPrefix(n.ID, key) {
			if target, err = a.lookupNetwork(key); err != nil {
				return nil, err
			}
			if target.Name == "host" || target.Name == "none" {
				return nil, kindErr(errInvalid, "container cannot be connected to multiple networks with one of the networks in host or none mode")
			}
		}
		es := &network.EndpointSettings{}
		if e != nil {
			es = e
		}
		if nets[target.Name], err = a.endpointConfig(target, es); err != nil {
			return nil, err
		}
	}
	nets[n.Name].NetworkID = n.ID
	for p, bs := range host.PortBindings {
		if !p.IsValid() || p.Num() == 0 {
			return nil, kindErr(errInvalid, "invalid port specification: %q", p.String())
		}
		for _, b := range bs {
			if b.HostPort != "" && b.HostPort != "0" {
				if _, _, err := hostPortRange(b.HostPort); err != nil {
					return nil, err
				}
			}
		}
	}
	return nets, nil
}

// endpointConfig checks what a user asks of an endpoint on n (create,
// network connect) as docker does, and returns the configuration kept of
// it: aliases, a static address, options, a MAC.
func (a *Agent) endpointConfig(n *Network, es *network.EndpointSettings) (*network.EndpointSettings, error) {
	if isPredefined(n.Name) {
		if es.IPAMConfig != nil && (es.IPAMConfig.IPv4Address.IsValid() || es.IPAMConfig.IPv6Address.IsValid()) {
			return nil, kindErr(errInvalid, "user specified IP address is supported on user defined networks only")
		}
		if len(es.Aliases) > 0 {
			return nil, kindErr(errInvalid, "network-scoped alias is supported only for containers in user defined networks")
		}
	}
	if err := a.checkEndpointIP(n, es); err != nil {
		return nil, err
	}
	return &network.EndpointSettings{
		IPAMConfig: es.IPAMConfig, Aliases: es.Aliases, DriverOpts: es.DriverOpts,
		MacAddress: es.MacAddress, NetworkID: n.ID,
	}, nil
}

// checkEndpointIP checks a static address against the network's subnets.
func (a *Agent) checkEndpointIP(n *Network, es *network.EndpointSettings) error {
	if es.IPAMConfig == nil || !es.IPAMConfig.IPv4Address.IsValid() {
		return nil
	}
	ip := es.IPAMConfig.IPv4Address
	for _, c := range n.IPAM.Config {
		if c.Subnet.Contains(ip) {
			return nil
		}
	}
	return kindErr(errInvalid, "invalid config for network %s: invalid endpoint settings:\nno configured subnet or ip-range contain the IP address %s", n.Name, ip)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hostPortRange parses docker's HostPort: "8080" or "8080-8090".
func hostPortRange(s string) (int, int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	b := a
	if err == nil && isRange {
		b, err = strconv.Atoi(hi)
	}
	if err != nil || a < 1 || a > 65535 || b < a || b > 65535 {
		return 0, 0, kindErr(errInvalid, "invalid port specification: %q: host ports must be numbers between 1 and 65535", s)
	}
	return a, b, nil
}

// netModeOf says which network namespace c gets: its network's driver decides.
func (a *Agent) netModeOf(ctx context.Context, c *Container) (netMode, error) {
	name := string(c.HostConfig.NetworkMode)
	if other, ok := strings.CutPrefix(name, "container:"); ok {
		if _, err := a.plugins.Network("container"); err != nil {
			return netMode{}, pluginErr(err)
		}
		return netMode{ns: networkv1.Namespace_NAMESPACE_CONTAINER, other: other}, nil
	}
	if name == "" || name == "default" {
		name = "bridge"
	}
	n, err := a.lookupNetwork(name)
	if err != nil {
		return netMode{}, err
	}
	drv, err := a.plugins.Network(n.Driver)
	if err != nil {
		return netMode{}, pluginErr(err)
	}
	caps, err := drv.Capabilities(ctx)
	if err != nil {
		return netMode{}, pluginErr(err)
	}
	return netMode{ns: caps.GetNamespace()}, nil
}

// netSetup is what the start of a container needs from its network.
type netSetup struct {
	// netns is the namespace to join: "" for a new one, spec.HostNetNS
	// for the host's, else a path.
	netns string
	// etc overrides EtcDir (container: mode shares the other's files).
	etcDir string
	etc    spec.Etc
	// done reports the endpoints and ports of an isolated namespace,
	// which are made in the background (wait) with bg, the goroutine's
	// copy of etc: etc takes it once drained.
	done    chan error
	bg      *spec.Etc
	drained bool
	err     error
}

// hostEtc is what of a container's /etc files its host configuration
// says: the DNS settings and extra hosts (the drivers add their part).
func hostEtc(hostname string, h *container.HostConfig) spec.Etc {
	etc := spec.Etc{Hostname: hostname, DNSSearch: h.DNSSearch, DNSOptions: h.DNSOptions}
	for _, ip := range h.DNS {
		etc.DNS = append(etc.DNS, ip.String())
	}
	for _, eh := range h.ExtraHosts {
		if name, ip, ok := strings.Cut(eh, ":"); ok && ip == "host-gateway" {
			eh = name + ":" + hostGateway()
		}
		etc.ExtraHosts = append(etc.ExtraHosts, eh)
	}
	return etc
}

// setupNetwork prepares c's network before its start: for drivers with
// isolated namespaces a namespace of its own, an endpoint on each of its
// networks, published ports. On error nothing is left behind. Callers hold
// c.mu.
func (a *Agent) setupNetwork(ctx context.Context, c *Container) (*netSetup, error) {
	h := c.HostConfig
	etc := hostEtc(c.Config.Hostname, h)
	m, err := a.netModeOf(ctx, c)
	if err != nil {
		return nil, err
	}
	switch m.ns {
	case networkv1.Namespace_NAMESPACE_HOST:
		etc.HostFiles = true
		return &netSetup{netns: spec.HostNetNS, etc: etc}, nil
	case networkv1.Namespace_NAMESPACE_NONE:
		return &netSetup{etc: etc}, nil
	case networkv1.Namespace_NAMESPACE_CONTAINER:
		other, err := a.lookup(m.other)
		if err != nil {
			return nil, err
		}
		if other == c {
			return nil, kindErr(errInvalid, "cannot join own network namespace")
		}
		other.mu.Lock()
		status, pid, ns := other.State.Status, other.State.Pid, other.NetNS
		other.mu.Unlock()
		if status != "running" {
			return nil, kindErr(errConflict, "cannot join network namespace of a non running container: container %s is %s", other.ID[:12], status)
		}
		if ns == "" {
			ns = fmt.Sprintf("/proc/%d/ns/net", pid)
		}
		return &netSetup{netns: ns, etcDir: filepath.Join(a.bundle(other.ID), "etc"), etc: etc}, nil
	case networkv1.Namespace_NAMESPACE_ISOLATED:
	default:
		return nil, fmt.Errorf("network driver of %s: unknown namespace mode %v", h.NetworkMode, m.ns)
	}
	path := c.warmNetNS()
	if path == "" {
		var err error
		if path, err = a.takeNetNS(c.ID); err != nil {
			return nil, fmt.Errorf("create network namespace: %w", err)
		}
	}
	c.NetNS = path
	if a.takeWarmNet(c, &etc) {
		// Connected with its warm container: only /etc is left.
		return &netSetup{netns: path, etc: etc}, nil
	}
	bg := etc
	ns := &netSetup{netns: path, etc: etc, done: make(chan error, 1), bg: &bg}
	// The endpoints and ports are made while libcontainer creates the
	// container (launch waits for them before the command starts), so
	// their ~3 ms are off a start's path. Until then the goroutine has
	// c's network fields, and bg, to itself: the caller holds c.mu and
	// does not touch them.
	go func() { ns.done <- a.connectAll(ctx, c, &bg) }()
	return ns, nil
}

// connectAll makes c's endpoints on its networks and publishes its ports,
// completing etc with the addresses and the DNS settings the driver gave.
func (a *Agent) connectAll(ctx context.Context, c *Container, etc *spec.Etc) error {
	names := sortedKeys(c.Networks)
	// The network of the network mode first: eth0, its gateway the default route.
	sort.SliceStable(names, func(i, j int) bool { return names[i] == string(c.HostConfig.NetworkMode) })
	for i, name := range names {
		es := c.Networks[name]
		resp, err := a.connect(ctx, c, name, es, nextInterface(c))
		if err != nil {
			return err
		}
		if i == 0 && len(etc.DNS) == 0 {
			etc.DNS = resp.GetDnsServers()
			if len(etc.DNSSearch) == 0 {
				etc.DNSSearch = resp.GetDnsSearch()
			}
			if len(etc.DNSOptions) == 0 {
				etc.DNSOptions = resp.GetDnsOptions()
			}
			if len(etc.DNS) == 0 {
				etc.DNS = []string{"8.8.8.8"}
			}
		}
		if es.IPAddress.IsValid() {
			etc.Addresses = append(etc.Addresses, es.IPAddress.String())
		}
	}
	return a.publishPorts(ctx, c)
}

// wait waits for the endpoints and ports made in the background, if any;
// the container's /etc files, written with the bundle, are then rewritten
// in place (they are bind mounts of these files) with what the drivers
// gave.
func (ns *netSetup) wait(etcDir string) error {
	if ns.done == nil {
		return nil // nothing to add to what the bundle has
	}
	if err := ns.drain(); err != nil {
		return err
	}
	return spec.WriteEtc(etcDir, ns.etc)
}

// drain waits for the background part of the set-up, once; a failed start
// calls it before undoing the set-up.
func (ns *netSetup) drain() error {
	if ns == nil || ns.done == nil {
		return nil
	}
	if !ns.drained {
		ns.err, ns.drained = <-ns.done, true
		ns.etc = *ns.bg
	}
	return ns.err
}

// connect makes c's endpoint on the network name and records what the
// driver gave in es. Callers hold c.mu.
func (a *Agent) connect(ctx context.Context, c *Container, name string, es *network.EndpointSettings, ifname string) (*networkv1.ConnectResponse, error) {
	n, err := a.lookupNetwork(name)
	if err != nil {
		return nil, err
	}
	drv, err := a.plugins.Network(n.Driver)
	if err != nil {
		return nil, pluginErr(err)
	}
	req := &networkv1.ConnectRequest{
		NetworkId: n.ID, EndpointId: newID(), NetnsPath: c.NetNS, ContainerId: c.ID,
		ContainerName: c.Name, Aliases: es.Aliases, InterfaceName: ifname, Options: es.DriverOpts,
	}
	if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
		req.Ipv4Address = es.IPAMConfig.IPv4Address.String()
	}
	if len(es.MacAddress) > 0 {
		req.MacAddress = es.MacAddress.String()
	}
	t0 := time.Now()
	resp, err := drv.Connect(ctx, req)
	a.log.Debug("connected", "id", c.ID, "network", n.Name, "took", time.Since(t0))
	if err != nil {
		return nil, pluginErr(err)
	}
	es.NetworkID, es.EndpointID = n.ID, req.EndpointId
	if c.Interfaces == nil {
		c.Interfaces = map[string]string{}
	}
	c.Interfaces[name] = ifname
	es.DNSNames = append([]string{c.Name, c.ID[:12]}, es.Aliases...)
	for _, ifc := range resp.GetInterfaces() {
		for _, addr := range ifc.GetAddresses() {
			p, err := netip.ParsePrefix(addr)
			if err != nil || !p.Addr().Is4() || es.IPAddress.IsValid() {
				continue
			}
			es.IPAddress, es.IPPrefixLen = p.Addr(), p.Bits()
		}
		if hw, err := net.ParseMAC(ifc.GetMacAddress()); err == nil && len(es.MacAddress) == 0 {
			es.MacAddress = network.HardwareAddr(hw)
		}
	}
	for _, r := range resp.GetRoutes() {
		if gw, err := netip.ParseAddr(r.GetGateway()); err == nil && gw.Is4() && !es.Gateway.IsValid() {
			es.Gateway = gw
		}
	}
	if !es.Gateway.IsValid() {
		// Internal networks have no default route; docker still shows
		// the network's gateway.
		for _, cfg := range n.IPAM.Config {
			if cfg.Gateway.IsValid() {
				es.Gateway = cfg.Gateway
				break
			}
		}
	}
	return resp, nil
}

// disconnect removes c's endpoint on the network name and clears what the
// driver gave. Callers hold c.mu.
func (a *Agent) disconnect(ctx context.Context, c *Container, name string, es *network.EndpointSettings) {
	if es.EndpointID == "" {
		return
	}
	n, err := a.lookupNetwork(name)
	if err == nil {
		var drv plugins.NetworkDriver
		if drv, err = a.plugins.Network(n.Driver); err == nil {
			err = drv.Disconnect(ctx, &networkv1.DisconnectRequest{NetworkId: n.ID, EndpointId: es.EndpointID, NetnsPath: c.NetNS})
		}
	}
	if err != nil {
		a.log.Warn("disconnect", "id", c.ID, "network", name, "error", err)
	}
	mac := es.MacAddress
	if es.IPAMConfig == nil || len(mac) == 0 {
		mac = nil
	}
	delete(c.Interfaces, name)
	*es = network.EndpointSettings{IPAMConfig: es.IPAMConfig, Aliases: es.Aliases, DriverOpts: es.DriverOpts, NetworkID: es.NetworkID, MacAddress: mac}
}

// teardownNetwork undoes setupNetwork: ports, endpoints, the namespace.
// Callers hold c.mu.
func (a *Agent) teardownNetwork(c *Container) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a.unpublishPorts(ctx, c)
	for name, es := range c.Networks {
		a.disconnect(ctx, c, name, es)
	}
	if c.NetNS != "" {
		if err := removeNetNS(c.NetNS); err != nil {
			a.log.Warn("remove network namespace", "id", c.ID, "error", err)
		}
		c.NetNS = ""
	}
}

// takeNetNS returns a fresh network namespace for a container: the spare
// one made in advance (after the previous start), else a new one.
func (a *Agent) takeNetNS(id string) (string, error) {
	if p, ok := a.spareNetNS.Take(); ok {
		return p, nil
	}
	return a.newNetNS(id[:16])
}

// newSpareNetNS makes the spare namespace.
func (a *Agent) newSpareNetNS() (string, error) {
	return a.newNetNS("spare-" + newID()[:10])
}

func dropNetNS(p string) { _ = removeNetNS(p) }

// newNetNS creates a network namespace with lo up and bind-mounts it at
// netns/NAME, where libcontainer's init joins it and drivers configure it.
func (a *Agent) newNetNS(name string) (string, error) {
	dir := a.dirs.NetNS()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return "", err
	}
	f.Close()
	// The agent's own namespace is the host's, which a process of the user
	// namespace cannot enter again: the thread stays in the new one and
	// ends with its goroutine.
	err = plugins.OnThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		return loopbackUp()
	})
	if err != nil {
		_ = removeNetNS(path)
		return "", err
	}
	return path, nil
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// hostGateway is the address that --add-host NAME:host-gateway names:
// the host's first global IPv4 address, which containers reach through
// the rootless network's NAT.
func hostGateway() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// portBindings is what c publishes: its bindings, and with -P every
// exposed port not bound otherwise.
func portBindings(c *Container) network.PortMap {
	out := network.PortMap{}
	for p, bs := range c.HostConfig.PortBindings {
		out[p] = bs
	}
	if c.HostConfig.PublishAllPorts {
		for p := range c.Config.ExposedPorts {
			if _, ok := out[p]; !ok {
				out[p] = []network.PortBinding{{}}
			}
		}
	}
	return out
}

// publishPorts forwards c's published ports from the host to its address
// through the rootless port driver. Callers hold c.mu.
func (a *Agent) publishPorts(ctx context.Context, c *Container) error {
	pm := portBindings(c)
	if len(pm) == 0 {
		return nil
	}
	// The address on the network of the network mode (eth0).
	var ip netip.Addr
	if es := c.Networks[string(c.HostConfig.NetworkMode)]; es != nil {
		ip = es.IPAddress
	}
	if !ip.IsValid() {
		return kindErr(errInvalid, "cannot publish ports: the container has no address on its network")
	}
	mgr, err := a.portManager()
	if err != nil {
		return err
	}
	keys := make([]network.Port, 0, len(pm))
	for p := range pm {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Num() < keys[j].Num() })
	for _, p := range keys {
		for _, b := range pm[p] {
			hostIP := "0.0.0.0"
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				hostIP = b.HostIP.String()
			}
			lo, hi := 0, 0
			if b.HostPort != "" && b.HostPort != "0" {
				if lo, hi, err = hostPortRange(b.HostPort); err != nil {
					return err
				}
			}
			st, err := a.addPort(ctx, mgr, string(p.Proto()), hostIP, lo, hi, ip.String(), int(p.Num()))
			if err != nil {
				return err
			}
			c.Ports = append(c.Ports, publishedPort{ID: st.ID, Port: p.String(), HostIP: hostIP, HostPort: st.Spec.ParentPort})
		}
	}
	return nil
}

// addPort forwards one port; host port 0 takes a free one, a range the
// first free one in it.
func (a *Agent) addPort(ctx context.Context, mgr port.Manager, proto, hostIP string, lo, hi int, childIP string, childPort int) (*port.Status, error) {
	var last error
	add := func(hp int) (*port.Status, error) {
		st, err := mgr.AddPort(ctx, port.Spec{Proto: proto, ParentIP: hostIP, ParentPort: hp, ChildIP: childIP, ChildPort: childPort})
		if err != nil {
			last = err
		}
		return st, err
	}
	if lo == 0 {
		// The kernel's free port is free when asked, not necessarily when
		// the port driver binds it (another process's connect may take it
		// meanwhile): a few tries.
		for try := 0; try < 3; try++ {
			free, err := freePort(proto, hostIP)
			if err != nil {
				return nil, err
			}
			if st, err := add(free); err == nil {
				return st, nil
			}
		}
	}
	for p := lo; p <= hi && lo != 0; p++ {
		if st, err := add(p); err == nil {
			return st, nil
		}
	}
	what := strconv.Itoa(lo)
	if hi > lo {
		what += "-" + strconv.Itoa(hi)
	}
	return nil, kindErr(errConflict, "failed to publish port %s:%s->%d/%s: Bind for %s:%s failed: port is already allocated (%v)", hostIP, what, childPort, proto, hostIP, what, last)
}

// freePort asks the kernel for a free port on the host.
func freePort(proto, hostIP string) (int, error) {
	if proto == "udp" {
		c, err := net.ListenPacket("udp", net.JoinHostPort(hostIP, "0"))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(hostIP, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// unpublishPorts removes c's port forwards. Callers hold c.mu.
func (a *Agent) unpublishPorts(ctx context.Context, c *Container) {
	if len(c.Ports) == 0 {
		return
	}
	mgr, err := a.portManager()
	if err != nil {
		a.log.Warn("unpublish ports", "id", c.ID, "error", err)
		c.Ports = nil
		return
	}
	for _, p := range c.Ports {
		if err := mgr.RemovePort(ctx, p.ID); err != nil {
			a.log.Warn("unpublish port", "id", c.ID, "port", p.Port, "error", err)
		}
	}
	c.Ports = nil
}

// networkSettings is inspect's view of c's networks and ports. Callers
// hold c.mu.
func (a *Agent) networkSettings(c *Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}, Ports: network.PortMap{}}
	for name, es := range c.Networks {
		e := *es
		ns.Networks[name] = &e
	}
	if c.State.Status == "running" {
		ns.SandboxKey = c.NetNS
		for p := range c.Config.ExposedPorts {
			ns.Ports[p] = nil
		}
		for _, pp := range c.Ports {
			p, err := network.ParsePort(pp.Port)
			if err != nil {
				continue
			}
			ip, _ := netip.ParseAddr(pp.HostIP)
			ns.Ports[p] = append(ns.Ports[p], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(pp.HostPort)})
		}
	}
	return ns
}

// portSummary is docker ps's view of c's ports. Callers hold c.mu.
func portSummary(c *Container) []container.PortSummary {
	out := []container.PortSummary{}
	published := map[string]bool{}
	for _, pp := range c.Ports {
		p, err := network.ParsePort(pp.Port)
		if err != nil {
			continue
		}
		published[pp.Port] = true
		ip, _ := netip.ParseAddr(pp.HostIP)
		out = append(out, container.PortSummary{IP: ip, PrivatePort: p.Num(), PublicPort: uint16(pp.HostPort), Type: string(p.Proto())})
	}
	for p := range c.Config.ExposedPorts {
		if !published[p.String()] {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PrivatePort < out[j].PrivatePort })
	return out
}

// staleNetNS lists the spare namespaces an earlier agent left, before this
// one makes any.
func (a *Agent) staleNetNS() []string {
	entries, _ := os.ReadDir(a.dirs.NetNS())
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "spare-") {
			out = append(out, filepath.Join(a.dirs.NetNS(), e.Name()))
		}
	}
	return out
}

// clearNetNS removes the stale namespaces no loaded container uses: a
// container's may have been a spare (or a warm container's) at its start.
func (a *Agent) clearNetNS(stale []string) {
	inUse := map[string]bool{}
	a.mu.Lock()
	for _, c := range a.containers {
		inUse[c.NetNS] = true
	}
	a.mu.Unlock()
	for _, p := range stale {
		if !inUse[p] {
			_ = removeNetNS(p)
		}
	}
}
