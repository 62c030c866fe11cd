package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// Name is the driver's name.
const Name = "bridge"

// Names of the bridge devices.
const (
	DefaultBridge = "moss0"
	BridgePrefix  = "mossbr-"
)

// Options the driver reads from CreateNetworkRequest.options (Docker's)
// and from ConfigureRequest.options (the plugin's table in Moss's
// configuration file).
const (
	OptionBridgeName = "com.docker.network.bridge.name"
	OptionMTU        = "com.docker.network.driver.mtu"
	// OptionResolvConf names the file whose nameservers the embedded DNS
	// forwards to (default /etc/resolv.conf, as the plugin sees it).
	OptionResolvConf = "resolv_conf"
)

const defaultMTU = 1500

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Driver is the bridge network driver. Its zero value is not usable: make
// it with New and call Configure first.
type Driver struct {
	version string
	log     hclog.Logger

	// mu guards everything below; the DNS servers read under it.
	mu       sync.RWMutex
	ns       netns.NsHandle  // the bridge namespace; closed: the plugin's own
	nl       *netlink.Handle // rtnetlink, in ns
	fw       *firewall
	store    store
	nets     map[string]*network
	upstream *upstream
	fwdOn    bool // IPv4 forwarding enabled in ns
	// mtu is new networks' MTU: the uplink's of the rootless namespace
	// (pasta's and slirp4netns's 65520), else 1500.
	mtu int
	// deleting are the veth deletions in flight, by host veth name.
	deleting map[string]*deletion
	// deletions counts them for Close, which waits; deleteSlots bounds
	// how many run at once.
	deletions   sync.WaitGroup
	deleteSlots chan struct{}
}

// deletion is a veth pair being deleted in the background.
type deletion struct {
	netns string // the container's namespace it has its other end in
	done  chan struct{}
}

// maxDeletions bounds the veth deletions in flight; each holds a thread in
// the kernel for a grace period.
const maxDeletions = 16

var _ plugins.NetworkDriver = (*Driver)(nil)

// New returns the driver; version is what Info reports.
func New(version string, log hclog.Logger) *Driver {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Driver{version: version, log: log, ns: netns.None(), deleting: map[string]*deletion{}, deleteSlots: make(chan struct{}, maxDeletions)}
}

// Info names the driver.
func (d *Driver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: Name, Kind: plugins.KindNetwork, Version: d.version}, nil
}

// Capabilities: containers get namespaces of their own, which Connect
// configures; users may create networks; the driver resolves names.
func (d *Driver) Capabilities(context.Context) (*networkv1.CapabilitiesResponse, error) {
	return &networkv1.CapabilitiesResponse{
		Namespace:    networkv1.Namespace_NAMESPACE_ISOLATED,
		UserNetworks: true,
		Dns:          true,
	}, nil
}

// Configure opens the bridge namespace (req.NetnsPath, else the plugin's
// own), loads the networks from req.StateDir and brings back what the
// kernel lost: bridges, their addresses, the nftables table, the DNS
// listeners. Endpoints whose veth is gone (their container's namespace
// went away while the plugin was not running, or the machine rebooted)
// are forgotten; veths of the driver's that no endpoint owns (a Connect
// cut short) are removed. Endpoints whose veth is there are left as they
// are: their containers keep their traffic.
func (d *Driver) Configure(_ context.Context, req *basev1.ConfigureRequest) error {
	if req.GetStateDir() == "" {
		return plugins.Invalid("bridge driver: no state directory")
	}
	d.Close()
	d.mu.Lock()
	err := d.configure(req)
	d.mu.Unlock()
	if err != nil {
		d.Close()
	}
	return err
}

// uplinkMTU is the MTU of the interface of the namespace's default route,
// or def.
func uplinkMTU(nl *netlink.Handle, def int) int {
	routes, err := nl.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return def
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP != nil && !r.Dst.IP.IsUnspecified() {
			continue
		}
		if l, err := nl.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU >= def {
			return l.Attrs().MTU
		}
	}
	return def
}

func (d *Driver) configure(req *basev1.ConfigureRequest) error {
	var err error
	if d.ns, err = openNetns(req.GetNetnsPath()); err != nil {
		return err
	}
	if d.nl, err = newHandle(d.ns); err != nil {
		return err
	}
	if d.fw, err = newFirewall(d.ns); err != nil {
		return err
	}
	d.store = newStore(req.GetStateDir(), req.GetRunDir())
	if d.nets, err = d.store.load(); err != nil {
		return err
	}
	resolvConf := req.GetOptions()[OptionResolvConf]
	if resolvConf == "" {
		resolvConf = "/etc/resolv.conf"
	}
	d.upstream = &upstream{path: resolvConf}
	d.fwdOn = false
	d.mtu = defaultMTU
	if req.GetNetnsPath() != "" {
		// Everything in the rootless namespace stays on this machine: its
		// uplink is a tap device of a user-space stack, not a wire. The
		// uplink's MTU for the bridges too gave 15-20 % more through a
		// published port (iperf3, 65520 against 1500).
		d.mtu = uplinkMTU(d.nl, defaultMTU)
	}

	veths, err := hostVeths(d.nl)
	if err != nil {
		return err
	}
	owned := map[string]bool{}
	for _, n := range d.nets {
		for _, ep := range n.Endpoints {
			if !veths[ep.HostVeth] {
				d.log.Info("forgetting an endpoint whose veth is gone", "network", n.Name, "endpoint", ep.ID, "veth", ep.HostVeth)
				n.removeEndpoint(ep)
				if err := d.store.removeEndpoint(n, ep); err != nil {
					return err
				}
				continue
			}
			owned[ep.HostVeth] = true
		}
	}
	for v := range veths {
		if !owned[v] {
			d.log.Info("removing a veth no endpoint owns", "veth", v)
			d.deleteVeth(nil, netip.Addr{}, v, "")
		}
	}
	for _, n := range d.nets {
		if err := d.ensure(n); err != nil {
			// The agent's CreateNetwork for it will say so again.
			d.log.Error("restore network", "network", n.Name, "error", err)
		}
	}
	return d.applyRules()
}

// Close releases the driver's sockets and handles — the DNS listeners
// first — and leaves every kernel object and the state as they are, as
// the plugin process's death would. It stands in for that death in tests,
// where a second instance on the same state must be able to listen.
func (d *Driver) Close() error {
	d.deletions.Wait()
	d.mu.Lock()
	servers := d.release()
	d.mu.Unlock()
	for _, s := range servers {
		s.stop()
	}
	return nil
}

func (d *Driver) release() []*dnsServer {
	var servers []*dnsServer
	for _, n := range d.nets {
		if n.dns != nil {
			servers = append(servers, n.dns)
			n.dns = nil
		}
	}
	d.nets = nil
	if d.nl != nil {
		d.nl.Close()
		d.nl = nil
	}
	d.fw.close()
	d.fw = nil
	if d.ns.IsOpen() {
		d.ns.Close()
	}
	d.ns = netns.None()
	return servers
}

var errNotConfigured = errors.New("bridge driver: not configured")

// ensure makes the kernel objects of n exist: its bridge with the gateway
// address, forwarding, the DNS listener. The firewall is applyRules'.
func (d *Driver) ensure(n *network) error {
	if err := ensureBridge(d.nl, n); err != nil {
		return err
	}
	if !d.fwdOn {
		if err := enableForwarding(d.ns); err != nil {
			return err
		}
		d.fwdOn = true
	}
	if n.dns == nil {
		s, err := startDNS(d.ns, n.ipam.Gateway, resolver{d: d, netID: n.ID})
		if err != nil {
			return err
		}
		n.dns = s
	}
	return nil
}

func (d *Driver) applyRules() error {
	nets := make([]*network, 0, len(d.nets))
	for _, n := range d.nets {
		nets = append(nets, n)
	}
	return d.fw.apply(nets)
}

// CreateNetwork sets the network up, or for a network_id it has, makes
// sure its kernel objects exist and returns its addressing as it was
// chosen. Addressing: the default network (req.Default) gets 10.88.0.0/16
// on bridge moss0 unless the request says otherwise; other networks
// without IPAM get the first /24 of 10.89.0.0–10.255.255.0 that overlaps
// neither another network nor an address of the bridge namespace (Podman's
// pool). A requested subnet that overlaps another network is an Exists
// error naming it; one that overlaps the namespace's own addresses
// (rootlesskit's tap device; the host's when Moss runs as root) is
// Invalid. One IPv4 subnet per network; IPv6 is Unsupported.
func (d *Driver) CreateNetwork(_ context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	id := req.GetNetworkId()
	if !validID.MatchString(id) {
		return nil, plugins.Invalid("invalid network id %q", id)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nets == nil {
		return nil, errNotConfigured
	}
	if n, ok := d.nets[id]; ok {
		if err := d.ensure(n); err != nil {
			return nil, fmt.Errorf("network %q: %w", n.Name, err)
		}
		if err := d.applyRules(); err != nil {
			return nil, err
		}
		return &networkv1.CreateNetworkResponse{Ipam: []*networkv1.IPAMConfig{n.ipam.proto()}}, nil
	}
	n, err := d.plan(req)
	if err != nil {
		return nil, err
	}
	if err := d.ensure(n); err != nil {
		d.teardown(n)
		return nil, fmt.Errorf("network %q: %w", n.Name, err)
	}
	d.nets[id] = n
	if err := d.applyRules(); err != nil {
		delete(d.nets, id)
		d.teardown(n)
		return nil, err
	}
	if err := d.store.saveNetwork(n); err != nil {
		delete(d.nets, id)
		d.teardown(n)
		_ = d.applyRules()
		return nil, err
	}
	d.log.Info("network created", "network", n.Name, "id", id, "bridge", n.Bridge, "ipam", n.ipam.String(), "internal", n.Internal)
	return &networkv1.CreateNetworkResponse{Ipam: []*networkv1.IPAMConfig{n.ipam.proto()}}, nil
}

// plan chooses a new network's bridge and addressing.
func (d *Driver) plan(req *networkv1.CreateNetworkRequest) (*network, error) {
	if req.GetIpv6() {
		return nil, plugins.Unsupported("the bridge driver has no IPv6 yet: create the network without --ipv6")
	}
	var cfgs []*networkv1.IPAMConfig
	for _, c := range req.GetIpam() {
		if c.GetSubnet() == "" && (c.GetGateway() != "" || c.GetIpRange() != "") {
			return nil, plugins.Invalid("a gateway or ip-range needs a subnet")
		}
		if c.GetSubnet() != "" {
			cfgs = append(cfgs, c)
		}
	}
	if len(cfgs) > 1 {
		return nil, plugins.Unsupported("the bridge driver takes one IPv4 subnet per network, not %d", len(cfgs))
	}
	n := &network{
		ID: req.GetNetworkId(), Name: req.GetName(), Internal: req.GetInternal(), Default: req.GetDefault(),
		MTU: d.mtu,
	}
	if n.Name == "" {
		n.Name = n.ID
	}
	opts := req.GetOptions()
	switch {
	case opts[OptionBridgeName] != "":
		n.Bridge = opts[OptionBridgeName]
		if len(n.Bridge) >= 16 || strings.ContainsAny(n.Bridge, "/ \t\n:") {
			return nil, plugins.Invalid("invalid bridge name %q", n.Bridge)
		}
	case n.Default:
		n.Bridge = DefaultBridge
	default:
		n.Bridge = BridgePrefix + n.ID[:min(8, len(n.ID))]
	}
	if s := opts[OptionMTU]; s != "" {
		mtu, err := strconv.Atoi(s)
		if err != nil || mtu < 68 || mtu > 65535 {
			return nil, plugins.Invalid("invalid MTU %q", s)
		}
		n.MTU = mtu
	}
	var taken []netip.Prefix
	bridges := map[string]bool{n.Bridge: true}
	for _, o := range d.nets {
		if o.Bridge == n.Bridge {
			return nil, plugins.Exists("bridge %s is taken by network %q", n.Bridge, o.Name)
		}
		if o.Default && n.Default {
			return nil, plugins.Exists("the default network exists already as %q (%s)", o.Name, o.ID)
		}
		bridges[o.Bridge] = true
		taken = append(taken, o.ipam.Subnet)
	}
	local, err := netnsPrefixes(d.nl, bridges)
	if err != nil {
		return nil, err
	}
	var a ipam
	switch {
	case len(cfgs) == 1:
		if a, err = parseIPAM(cfgs[0]); err != nil {
			return nil, err
		}
	case n.Default:
		a = ipam{Subnet: defaultSubnet, Gateway: defaultGateway, Range: defaultSubnet}
	default:
		p, ok := freeSubnet(append(taken, local...))
		if !ok {
			return nil, plugins.Exists("no free subnet left in 10.89.0.0-10.255.255.255: give one with --subnet")
		}
		a = ipam{Subnet: p, Gateway: p.Addr().Next(), Range: p}
	}
	for _, o := range d.nets {
		if a.Subnet.Overlaps(o.ipam.Subnet) {
			return nil, plugins.Exists("subnet %s overlaps network %q (%s)", a.Subnet, o.Name, o.ipam.Subnet)
		}
	}
	if p, ok := overlapping(a.Subnet, local); ok {
		return nil, plugins.Invalid("subnet %s overlaps %s, a network of the namespace that holds the bridges (its way out)", a.Subnet, p)
	}
	n.Subnet, n.Gateway = a.Subnet.String(), a.Gateway.String()
	if a.Range != a.Subnet {
		n.IPRange = a.Range.String()
	}
	if err := n.init(); err != nil {
		return nil, err
	}
	return n, nil
}

// teardown removes n's kernel objects but the firewall (applyRules'):
// its endpoints' veths, its DNS listener, its bridge.
func (d *Driver) teardown(n *network) {
	for _, ep := range n.Endpoints {
		_ = deleteLink(d.nl, ep.HostVeth)
	}
	if n.dns != nil {
		// Stopped off the lock: handlers wait for it.
		go n.dns.stop()
		n.dns = nil
	}
	if err := deleteLink(d.nl, n.Bridge); err != nil {
		d.log.Warn("delete bridge", "bridge", n.Bridge, "error", err)
	}
}

// DeleteNetwork removes the network's bridge (and any veth still on it),
// its rules, its DNS listener and its state. Unknown networks are no
// error.
func (d *Driver) DeleteNetwork(_ context.Context, req *networkv1.DeleteNetworkRequest) error {
	d.mu.Lock()
	if d.nets == nil {
		d.mu.Unlock()
		return errNotConfigured
	}
	n, ok := d.nets[req.GetNetworkId()]
	if !ok {
		d.mu.Unlock()
		return nil
	}
	dns := n.dns
	n.dns = nil
	d.teardown(n)
	delete(d.nets, n.ID)
	err := d.applyRules()
	if rerr := d.store.removeNetwork(n); err == nil {
		err = rerr
	}
	d.mu.Unlock()
	dns.stop()
	if err == nil {
		d.log.Info("network deleted", "network", n.Name, "id", n.ID)
	}
	return err
}

// Connect makes a veth pair, the host end on the network's bridge, the
// other end in the container's namespace as req.InterfaceName (eth0)
// with the endpoint's MAC (req.MacAddress, else random and locally
// administered), its address (req.Ipv4Address, else the next free one)
// and, on networks that are not internal, the default route — unless
// the container has one already from a network it joined before. The
// answer's DNS server is the gateway, where the embedded DNS listens. A
// second Connect of an endpoint updates its name and aliases and returns
// its configuration; should its veth be gone, it is made again with the
// same address and MAC.
func (d *Driver) Connect(_ context.Context, req *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	if !validID.MatchString(req.GetEndpointId()) {
		return nil, plugins.Invalid("invalid endpoint id %q", req.GetEndpointId())
	}
	if req.GetNetnsPath() == "" {
		return nil, plugins.Invalid("no network namespace to connect")
	}
	if req.GetIpv6Address() != "" {
		return nil, plugins.Unsupported("the bridge driver has no IPv6: cannot give %s", req.GetIpv6Address())
	}
	ifname := req.GetInterfaceName()
	if ifname == "" {
		ifname = "eth0"
	}
	if len(ifname) >= 16 || strings.ContainsAny(ifname, "/ \t\n:") || ifname == "." || ifname == ".." {
		return nil, plugins.Invalid("invalid interface name %q", ifname)
	}
	var mac net.HardwareAddr
	if s := req.GetMacAddress(); s != "" {
		var err error
		mac, err = net.ParseMAC(s)
		if err != nil || len(mac) != 6 || mac[0]&1 != 0 {
			return nil, plugins.Invalid("invalid MAC address %q: want a unicast Ethernet address", s)
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nets == nil {
		return nil, errNotConfigured
	}
	n, ok := d.nets[req.GetNetworkId()]
	if !ok {
		return nil, plugins.NotFound("network %s not found", req.GetNetworkId())
	}
	name := strings.TrimPrefix(req.GetContainerName(), "/")
	if ep, ok := n.Endpoints[req.GetEndpointId()]; ok {
		ep.ContainerID, ep.ContainerName, ep.Aliases = req.GetContainerId(), name, req.GetAliases()
		if _, err := d.nl.LinkByName(ep.HostVeth); err == nil {
			if err := d.store.saveEndpoint(n, ep); err != nil {
				return nil, err
			}
			return n.response(ep), nil
		}
		d.log.Info("endpoint's veth is gone: making it again", "network", n.Name, "endpoint", ep.ID)
		n.removeEndpoint(ep)
		ep.NetnsPath, ep.Interface = req.GetNetnsPath(), ifname
		return d.connect(n, ep)
	}
	var addr netip.Addr
	var err error
	if s := req.GetIpv4Address(); s != "" {
		// An address just released is free once its veth is gone.
		if a, err := netip.ParseAddr(s); err == nil {
			waitReleased(n, a)
		}
		if addr, err = n.ipam.checkStatic(s, n.taken); err != nil {
			return nil, err
		}
	} else if addr, ok = n.ipam.allocate(n.taken, n.last); !ok {
		return nil, fmt.Errorf("network %q has no free address left in %s", n.Name, n.ipam.Range)
	}
	if mac == nil {
		mac = randomMAC()
	}
	ep := &endpoint{
		ID:            req.GetEndpointId(),
		ContainerID:   req.GetContainerId(),
		ContainerName: name,
		Aliases:       req.GetAliases(),
		Address:       addr.String(),
		MAC:           mac.String(),
		NetnsPath:     req.GetNetnsPath(),
		Interface:     ifname,
		HostVeth:      hostVethName(req.GetEndpointId()),
		Created:       now(),
		addr:          addr,
	}
	return d.connect(n, ep)
}

// connect makes ep's veth pair and records it.
func (d *Driver) connect(n *network, ep *endpoint) (*networkv1.ConnectResponse, error) {
	if n.bridgeIndex == 0 {
		if err := d.ensure(n); err != nil {
			return nil, err
		}
	}
	err := connectVeth(d.nl, n, ep, d.settle)
	if errors.As(err, new(errVethAdd)) {
		// The bridge may have been deleted behind the driver's back (its
		// index is stale): make it again and retry.
		if _, lerr := d.nl.LinkByIndex(n.bridgeIndex); lerr != nil {
			n.bridgeIndex = 0
			if err := d.ensure(n); err != nil {
				return nil, err
			}
			err = connectVeth(d.nl, n, ep, d.settle)
		}
	}
	if err != nil {
		return nil, err
	}
	n.addEndpoint(ep)
	if err := d.store.saveEndpoint(n, ep); err != nil {
		n.removeEndpoint(ep)
		_ = deleteLink(d.nl, ep.HostVeth)
		return nil, err
	}
	return n.response(ep), nil
}

// settle waits for the deletions in flight that may hold the names ep
// needs: its own host veth name (the same endpoint connected again) or an
// interface in its container's namespace.
func (d *Driver) settle(ep *endpoint) {
	for name, del := range d.deleting {
		if name == ep.HostVeth || del.netns == ep.NetnsPath {
			waitDone(del.done)
		}
	}
}

// waitReleased waits for the deletion of the veth that last had addr.
func waitReleased(n *network, addr netip.Addr) {
	if ch, ok := n.releasing[addr]; ok {
		waitDone(ch)
	}
}

// deletionTimeout bounds a wait for a veth deletion; they take a few
// tens of milliseconds.
const deletionTimeout = 5 * time.Second

func waitDone(ch chan struct{}) {
	t := time.NewTimer(deletionTimeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// deleteVeth deletes the veth pair whose host end is name in the
// background and, once it is gone, frees addr on n (if n is not nil).
// Deleting a network device takes the kernel an RCU grace period — some
// 20 ms, which a Disconnect need not wait for; it holds no lock that other
// netlink requests need, so Connects go on meanwhile. Each deletion has a
// netlink socket of its own: a request holds its socket until the kernel
// answers. Call with d.mu held.
func (d *Driver) deleteVeth(n *network, addr netip.Addr, name, netnsPath string) {
	del := &deletion{netns: netnsPath, done: make(chan struct{})}
	d.deleting[name] = del
	if n != nil {
		n.releasing[addr] = del.done
	}
	ns := d.ns
	d.deletions.Add(1)
	go func() {
		defer d.deletions.Done()
		d.deleteSlots <- struct{}{}
		h, err := newHandle(ns)
		if err == nil {
			err = deleteLink(h, name)
			h.Close()
		}
		<-d.deleteSlots
		if err != nil {
			// Configure of the next start removes it.
			d.log.Warn("delete veth", "veth", name, "error", err)
		}
		close(del.done)
		d.mu.Lock()
		if d.deleting[name] == del {
			delete(d.deleting, name)
		}
		d.mu.Unlock()
	}()
}

func (n *network) response(ep *endpoint) *networkv1.ConnectResponse {
	resp := &networkv1.ConnectResponse{
		Interfaces: []*networkv1.Interface{{
			Name:       ep.Interface,
			MacAddress: ep.MAC,
			Addresses:  []string{n.ipam.prefix(ep.addr).String()},
		}},
		DnsServers: []string{n.ipam.Gateway.String()},
	}
	if ep.DefaultRoute {
		resp.Routes = []*networkv1.Route{{Destination: "0.0.0.0/0", Gateway: n.ipam.Gateway.String(), Interface: ep.Interface}}
	}
	return resp
}

// Disconnect forgets the endpoint — its names are gone from the DNS at
// once — and deletes its veth pair from the bridge side in the background
// (see deleteVeth): the container's end goes with it, within some tens of
// milliseconds; if the container's namespace is gone, both are already.
// Its address is free once the veth is gone; a Connect that needs the
// address or an interface name it held waits for that. Unknown endpoints
// are no error.
func (d *Driver) Disconnect(_ context.Context, req *networkv1.DisconnectRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nets == nil {
		return errNotConfigured
	}
	n, ok := d.nets[req.GetNetworkId()]
	if !ok {
		return nil
	}
	ep, ok := n.Endpoints[req.GetEndpointId()]
	if !ok {
		return nil
	}
	if err := d.store.removeEndpoint(n, ep); err != nil {
		return fmt.Errorf("disconnect %s from %q: %w", ep.ID, n.Name, err)
	}
	n.removeEndpoint(ep)
	d.deleteVeth(n, ep.addr, ep.HostVeth, ep.NetnsPath)
	return nil
}
