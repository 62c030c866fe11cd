// Package networktest is the conformance suite of Moss network drivers:
// Run checks that a driver keeps the contract of plugins.NetworkDriver as
// the agent sees it, across the gRPC boundary. It also has the namespace
// helpers drivers' tests need to run unprivileged: Isolate re-runs a test
// as root of user, mount and network namespaces of its own, NewNetns makes
// namespaces for containers, Do runs code inside one.
//
// It tests through the driver's API only; what a driver does inside
// (devices, rules, files) is its own tests' business.
package networktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// Harness is what Run needs of a driver.
type Harness struct {
	// Name is the name the driver's Info must report.
	Name string
	// New returns a new, unconfigured instance of the driver. Run serves
	// it over gRPC (plugins.TestNetworkClient) and calls Configure. If the
	// instance holds what a second one would conflict with (listening
	// sockets), it implements io.Closer: Close must release that and leave
	// everything else — kernel objects, state — as the death of the
	// plugin process would. Run calls it to stand in for a restart.
	New func(t *testing.T) plugins.NetworkDriver
	// Configure returns the request for Configure, called once per test:
	// fresh directories, and whatever else the driver needs (a namespace
	// for the bridges). A restarted instance gets the same request.
	Configure func(t *testing.T) *basev1.ConfigureRequest
	// NewNetns makes a container's network namespace and returns its
	// path; it is removed when the test ends. Needed by drivers whose
	// Namespace is ISOLATED; networktest.NewNetns fits within Isolate.
	NewNetns func(t *testing.T) string
	// Subnets are two disjoint IPv4 subnets of at least /24 the suite may
	// give networks; the default is two documentation ranges
	// (192.0.2.0/24, 198.51.100.0/24).
	Subnets []string
}

const callTimeout = 30 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return c
}

// randomID is a Docker-style ID: 64 hex digits.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// instance is one configured driver over gRPC and the raw driver behind.
type instance struct {
	d   plugins.NetworkDriver
	raw plugins.NetworkDriver
	cfg *basev1.ConfigureRequest
}

func (h Harness) start(t *testing.T, cfg *basev1.ConfigureRequest) *instance {
	t.Helper()
	raw := h.New(t)
	d := plugins.TestNetworkClient(t, raw)
	if err := d.Configure(ctx(t), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	i := &instance{d: d, raw: raw, cfg: cfg}
	t.Cleanup(func() { i.stop() })
	return i
}

// stop stands in for the death of the plugin process.
func (i *instance) stop() {
	if c, ok := i.raw.(io.Closer); ok {
		_ = c.Close()
	}
}

// network creates a network that the test's end deletes.
func (i *instance) network(t *testing.T, req *networkv1.CreateNetworkRequest) *networkv1.CreateNetworkResponse {
	t.Helper()
	if req.NetworkId == "" {
		req.NetworkId = randomID()
	}
	resp, err := i.d.CreateNetwork(ctx(t), req)
	if err != nil {
		t.Fatalf("CreateNetwork %q: %v", req.Name, err)
	}
	id := req.NetworkId
	t.Cleanup(func() { _ = i.d.DeleteNetwork(context.Background(), &networkv1.DeleteNetworkRequest{NetworkId: id}) })
	return resp
}

// Run runs the conformance suite against the driver of h. Every driver
// must pass it; drivers whose Namespace is not ISOLATED skip the parts
// about Connect (the agent never calls it for them), drivers without
// user networks those about subnets.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Configure == nil {
		t.Fatal("networktest: the harness needs New and Configure")
	}
	if len(h.Subnets) < 2 {
		h.Subnets = []string{"192.0.2.0/24", "198.51.100.0/24"}
	}
	var caps *networkv1.CapabilitiesResponse
	t.Run("Info", func(t *testing.T) {
		i := h.start(t, h.Configure(t))
		info, err := i.d.Info(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.GetKind() != plugins.KindNetwork || info.GetName() != h.Name {
			t.Errorf("Info = kind %q name %q, want %q %q", info.GetKind(), info.GetName(), plugins.KindNetwork, h.Name)
		}
		if info.GetVersion() == "" {
			t.Error("Info has no version")
		}
	})
	i := h.start(t, h.Configure(t))
	caps, err := i.d.Capabilities(ctx(t))
	if err != nil {
		t.Fatalf("Capabilities: %v", err)
	}
	i.stop()
	t.Run("Capabilities", func(t *testing.T) {
		if caps.GetNamespace() == networkv1.Namespace_NAMESPACE_UNSPECIFIED {
			t.Error("Capabilities: namespace unspecified")
		}
	})
	isolated := caps.GetNamespace() == networkv1.Namespace_NAMESPACE_ISOLATED
	if isolated && h.NewNetns == nil {
		t.Fatal("networktest: an ISOLATED driver's harness needs NewNetns")
	}
	t.Run("DefaultNetwork", func(t *testing.T) { h.testDefault(t) })
	t.Run("UnknownIsNoError", func(t *testing.T) { h.testUnknown(t, isolated) })
	if caps.GetUserNetworks() {
		t.Run("CreateIdempotent", func(t *testing.T) { h.testCreateIdempotent(t) })
		t.Run("ChosenSubnet", func(t *testing.T) { h.testChosenSubnet(t) })
		t.Run("OverlapExists", func(t *testing.T) { h.testOverlap(t) })
		t.Run("InvalidIPAM", func(t *testing.T) { h.testInvalid(t) })
	}
	if !isolated || !caps.GetUserNetworks() {
		return
	}
	t.Run("Connect", func(t *testing.T) { h.testConnect(t) })
	t.Run("ConnectUnknownNetwork", func(t *testing.T) { h.testConnectUnknown(t) })
	t.Run("StaticAddress", func(t *testing.T) { h.testStatic(t) })
	t.Run("DisconnectReleases", func(t *testing.T) { h.testRelease(t) })
	t.Run("Restart", func(t *testing.T) { h.testRestart(t) })
}

func (h Harness) testDefault(t *testing.T) {
	i := h.start(t, h.Configure(t))
	req := &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: h.Name, Default: true}
	first := i.network(t, req)
	again, err := i.d.CreateNetwork(ctx(t), req)
	if err != nil {
		t.Fatalf("second CreateNetwork of the default network: %v", err)
	}
	if !proto.Equal(first, again) {
		t.Errorf("CreateNetwork is not idempotent: %v, then %v", first, again)
	}
	if err := i.d.DeleteNetwork(ctx(t), &networkv1.DeleteNetworkRequest{NetworkId: req.NetworkId}); err != nil {
		t.Errorf("DeleteNetwork: %v", err)
	}
	if err := i.d.DeleteNetwork(ctx(t), &networkv1.DeleteNetworkRequest{NetworkId: req.NetworkId}); err != nil {
		t.Errorf("DeleteNetwork of a deleted network: %v", err)
	}
}

func (h Harness) testUnknown(t *testing.T, isolated bool) {
	i := h.start(t, h.Configure(t))
	if err := i.d.DeleteNetwork(ctx(t), &networkv1.DeleteNetworkRequest{NetworkId: randomID()}); err != nil {
		t.Errorf("DeleteNetwork of an unknown network: %v", err)
	}
	if err := i.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: randomID(), EndpointId: randomID()}); err != nil {
		t.Errorf("Disconnect from an unknown network: %v", err)
	}
	if !isolated {
		return
	}
	netID := randomID()
	i.network(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "unknown", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}})
	if err := i.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: randomID()}); err != nil {
		t.Errorf("Disconnect of an unknown endpoint: %v", err)
	}
}

func (h Harness) testCreateIdempotent(t *testing.T) {
	i := h.start(t, h.Configure(t))
	req := &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "idem", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}}
	first := i.network(t, req)
	if len(first.GetIpam()) != 1 || !samePrefix(first.Ipam[0].GetSubnet(), h.Subnets[0]) {
		t.Fatalf("CreateNetwork with subnet %s answered %v", h.Subnets[0], first.GetIpam())
	}
	gw, err := netip.ParseAddr(first.Ipam[0].GetGateway())
	if err != nil || !netip.MustParsePrefix(h.Subnets[0]).Contains(gw) {
		t.Errorf("gateway %q is not an address of %s", first.Ipam[0].GetGateway(), h.Subnets[0])
	}
	for n := 0; n < 2; n++ {
		again, err := i.d.CreateNetwork(ctx(t), req)
		if err != nil {
			t.Fatalf("CreateNetwork again for the same network_id: %v", err)
		}
		if !proto.Equal(first, again) {
			t.Errorf("CreateNetwork is not idempotent: %v, then %v", first, again)
		}
	}
}

func (h Harness) testChosenSubnet(t *testing.T) {
	i := h.start(t, h.Configure(t))
	i.network(t, &networkv1.CreateNetworkRequest{Name: "given", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}})
	var got []netip.Prefix
	for n := 0; n < 2; n++ {
		resp := i.network(t, &networkv1.CreateNetworkRequest{Name: "chosen"})
		if len(resp.GetIpam()) == 0 {
			t.Fatal("CreateNetwork without IPAM answered no subnet")
		}
		p, err := netip.ParsePrefix(resp.Ipam[0].GetSubnet())
		if err != nil {
			t.Fatalf("chosen subnet %q: %v", resp.Ipam[0].GetSubnet(), err)
		}
		got = append(got, p)
	}
	all := append([]netip.Prefix{netip.MustParsePrefix(h.Subnets[0])}, got...)
	for a := range all {
		for b := a + 1; b < len(all); b++ {
			if all[a].Overlaps(all[b]) {
				t.Errorf("chosen subnets overlap: %s and %s", all[a], all[b])
			}
		}
	}
}

func (h Harness) testOverlap(t *testing.T) {
	i := h.start(t, h.Configure(t))
	i.network(t, &networkv1.CreateNetworkRequest{Name: "first", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}})
	p := netip.MustParsePrefix(h.Subnets[0])
	for _, s := range []string{h.Subnets[0], netip.PrefixFrom(p.Addr(), p.Bits()+1).String(), netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked().String()} {
		_, err := i.d.CreateNetwork(ctx(t), &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "second", Ipam: []*networkv1.IPAMConfig{{Subnet: s}}})
		if !errors.Is(err, plugins.ErrExists) {
			t.Errorf("CreateNetwork with %s overlapping %s: %v, want an Exists error", s, h.Subnets[0], err)
		}
	}
	i.network(t, &networkv1.CreateNetworkRequest{Name: "disjoint", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[1]}}})
}

func (h Harness) testInvalid(t *testing.T) {
	i := h.start(t, h.Configure(t))
	p := netip.MustParsePrefix(h.Subnets[0])
	for _, c := range []*networkv1.IPAMConfig{
		{Subnet: "10.1.2.300/24"},
		{Subnet: "not-a-cidr"},
		{Subnet: "10.0.0.0/33"},
		{Subnet: h.Subnets[0], Gateway: netip.MustParsePrefix(h.Subnets[1]).Addr().Next().String()},
		{Subnet: h.Subnets[0], Gateway: "bogus"},
		{Subnet: h.Subnets[0], IpRange: h.Subnets[1]},
		{Subnet: netip.PrefixFrom(p.Addr(), p.Bits()+1).String(), IpRange: h.Subnets[0]},
	} {
		_, err := i.d.CreateNetwork(ctx(t), &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "bad", Ipam: []*networkv1.IPAMConfig{c}})
		if !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("CreateNetwork with %v: %v, want an Invalid error", c, err)
		}
	}
}

// connect connects a new endpoint and checks the answer against the
// namespace.
func (i *instance) connect(t *testing.T, req *networkv1.ConnectRequest) *networkv1.ConnectResponse {
	t.Helper()
	resp, err := i.d.Connect(ctx(t), req)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return resp
}

// checkInterface checks that the namespace at path has the interface the
// Connect answer names, with its MAC and addresses.
func checkInterface(t *testing.T, path string, resp *networkv1.ConnectResponse, subnet netip.Prefix) {
	t.Helper()
	if len(resp.GetInterfaces()) == 0 {
		t.Fatal("Connect answered no interface")
	}
	want := resp.Interfaces[0]
	if len(want.GetAddresses()) == 0 {
		t.Fatal("Connect answered no address")
	}
	for _, a := range want.GetAddresses() {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			t.Fatalf("address %q is not a CIDR: %v", a, err)
		}
		if !subnet.Contains(p.Addr()) || p.Bits() != subnet.Bits() {
			t.Errorf("address %s is not in subnet %s", a, subnet)
		}
	}
	err := Do(path, func() error {
		ifc, err := net.InterfaceByName(want.GetName())
		if err != nil {
			return err
		}
		if want.GetMacAddress() != "" && ifc.HardwareAddr.String() != want.GetMacAddress() {
			t.Errorf("interface %s has MAC %s, Connect said %s", want.GetName(), ifc.HardwareAddr, want.GetMacAddress())
		}
		if ifc.Flags&net.FlagUp == 0 {
			t.Errorf("interface %s is down", want.GetName())
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return err
		}
		for _, a := range want.GetAddresses() {
			found := false
			for _, have := range addrs {
				if have.String() == a {
					found = true
				}
			}
			if !found {
				t.Errorf("interface %s has addresses %v, not %s", want.GetName(), addrs, a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("interface %s in the container's namespace: %v", want.GetName(), err)
	}
}

// interfaceGone reports whether name is missing from the namespace at
// path, waiting a little for it to go: a driver may finish removing a
// device after Disconnect returned (the kernel takes a grace period to
// delete one).
func interfaceGone(t *testing.T, path, name string) bool {
	t.Helper()
	deadline := time.Now().Add(goneTimeout)
	for {
		gone := false
		if err := Do(path, func() error {
			_, err := net.InterfaceByName(name)
			gone = err != nil
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if gone || time.Now().After(deadline) {
			return gone
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goneTimeout is how long an interface may outlive its Disconnect.
const goneTimeout = 5 * time.Second

func firstAddr(t *testing.T, resp *networkv1.ConnectResponse) netip.Addr {
	t.Helper()
	p, err := netip.ParsePrefix(resp.GetInterfaces()[0].GetAddresses()[0])
	if err != nil {
		t.Fatal(err)
	}
	return p.Addr()
}

func (h Harness) testConnect(t *testing.T) {
	i := h.start(t, h.Configure(t))
	netID := randomID()
	i.network(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "conn", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}})
	subnet := netip.MustParsePrefix(h.Subnets[0])
	ns := h.NewNetns(t)
	req := &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns, ContainerId: randomID(), ContainerName: "c1", Aliases: []string{"one"}}
	first := i.connect(t, req)
	if name := first.GetInterfaces()[0].GetName(); name != "eth0" {
		t.Errorf("interface without interface_name is %q, want eth0", name)
	}
	checkInterface(t, ns, first, subnet)
	req.Aliases = []string{"one", "uno"}
	again := i.connect(t, req)
	if !proto.Equal(first, again) {
		t.Errorf("Connect of a connected endpoint: %v, then %v", first, again)
	}
	// A second interface in the same namespace, named by the agent.
	ns2req := &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns, ContainerId: randomID(), InterfaceName: "eth1"}
	second := i.connect(t, ns2req)
	if second.GetInterfaces()[0].GetName() != "eth1" {
		t.Errorf("interface_name eth1 gave %q", second.GetInterfaces()[0].GetName())
	}
	if firstAddr(t, second) == firstAddr(t, first) {
		t.Errorf("two endpoints have address %s", firstAddr(t, first))
	}
	checkInterface(t, ns, second, subnet)
	for _, r := range []*networkv1.ConnectRequest{req, ns2req} {
		dreq := &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: r.EndpointId, NetnsPath: ns}
		if err := i.d.Disconnect(ctx(t), dreq); err != nil {
			t.Fatalf("Disconnect: %v", err)
		}
		if err := i.d.Disconnect(ctx(t), dreq); err != nil {
			t.Errorf("Disconnect of a disconnected endpoint: %v", err)
		}
	}
	// Connected again at once, as `network disconnect` then `connect` do:
	// the same endpoint, namespace and interface name.
	back := i.connect(t, req)
	checkInterface(t, ns, back, subnet)
	if err := i.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: req.EndpointId, NetnsPath: ns}); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	for _, name := range []string{"eth0", "eth1"} {
		if !interfaceGone(t, ns, name) {
			t.Errorf("interface %s still in the namespace %v after Disconnect", name, goneTimeout)
		}
	}
}

func (h Harness) testConnectUnknown(t *testing.T) {
	i := h.start(t, h.Configure(t))
	_, err := i.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: randomID(), EndpointId: randomID(), NetnsPath: h.NewNetns(t)})
	if !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Connect to an unknown network: %v, want a NotFound error", err)
	}
}

func (h Harness) testStatic(t *testing.T) {
	i := h.start(t, h.Configure(t))
	netID := randomID()
	i.network(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "static", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}})
	subnet := netip.MustParsePrefix(h.Subnets[0])
	static := subnet.Addr().Next().Next().Next().Next() // .4
	ns1, ns2 := h.NewNetns(t), h.NewNetns(t)
	resp := i.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns1, Ipv4Address: static.String()})
	if got := firstAddr(t, resp); got != static {
		t.Errorf("static address %s gave %s", static, got)
	}
	checkInterface(t, ns1, resp, subnet)
	_, err := i.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns2, Ipv4Address: static.String()})
	if !errors.Is(err, plugins.ErrExists) {
		t.Errorf("Connect with a taken address: %v, want an Exists error", err)
	}
	outside := netip.MustParsePrefix(h.Subnets[1]).Addr().Next().Next()
	_, err = i.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns2, Ipv4Address: outside.String()})
	if !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Connect with address %s outside %s: %v, want an Invalid error", outside, subnet, err)
	}
	if !interfaceGone(t, ns2, "eth0") {
		t.Error("a failed Connect left an interface in the namespace")
	}
	// Dynamic addresses avoid the static one.
	for n := 0; n < 6; n++ {
		ns := h.NewNetns(t)
		r := i.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns})
		if firstAddr(t, r) == static {
			t.Fatalf("dynamic address %s is the static one of another endpoint", static)
		}
	}
}

func (h Harness) testRelease(t *testing.T) {
	i := h.start(t, h.Configure(t))
	netID := randomID()
	i.network(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "release", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}})
	ns1, ns2 := h.NewNetns(t), h.NewNetns(t)
	ep1 := randomID()
	resp := i.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep1, NetnsPath: ns1})
	addr := firstAddr(t, resp)
	if err := i.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: ep1, NetnsPath: ns1}); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	resp = i.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns2, Ipv4Address: addr.String()})
	if got := firstAddr(t, resp); got != addr {
		t.Errorf("released address %s: got %s", addr, got)
	}
	// The first namespace can be connected again, under a new endpoint.
	i.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns1})
}

func (h Harness) testRestart(t *testing.T) {
	cfg := h.Configure(t)
	i := h.start(t, cfg)
	netID := randomID()
	create := &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "restart", Ipam: []*networkv1.IPAMConfig{{Subnet: h.Subnets[0]}}}
	created := i.network(t, create)
	auto := &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "restart-auto"}
	autoResp := i.network(t, auto)
	ns1 := h.NewNetns(t)
	req1 := &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns1, ContainerId: randomID(), ContainerName: "kept"}
	first := i.connect(t, req1)
	index := func() int {
		idx := 0
		if err := Do(ns1, func() error {
			ifc, err := net.InterfaceByName(first.Interfaces[0].GetName())
			if err == nil {
				idx = ifc.Index
			}
			return err
		}); err != nil {
			t.Fatalf("interface of the endpoint: %v", err)
		}
		return idx
	}
	before := index()
	i.stop()

	j := h.start(t, cfg)
	// The agent creates its networks again after a plugin restart.
	for _, c := range []struct {
		req  *networkv1.CreateNetworkRequest
		want *networkv1.CreateNetworkResponse
	}{{create, created}, {auto, autoResp}} {
		got, err := j.d.CreateNetwork(ctx(t), c.req)
		if err != nil {
			t.Fatalf("CreateNetwork after a restart: %v", err)
		}
		if !proto.Equal(got, c.want) {
			t.Errorf("CreateNetwork after a restart: %v, before %v", got, c.want)
		}
	}
	again := j.connect(t, req1)
	if !proto.Equal(first, again) {
		t.Errorf("Connect after a restart: %v, before %v", again, first)
	}
	if after := index(); after != before {
		t.Errorf("the endpoint's interface was made again by the restarted driver (index %d, was %d)", after, before)
	}
	_, err := j.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: h.NewNetns(t), Ipv4Address: firstAddr(t, first).String()})
	if !errors.Is(err, plugins.ErrExists) {
		t.Errorf("after a restart, Connect with the address of a kept endpoint: %v, want an Exists error", err)
	}
	ns2 := h.NewNetns(t)
	second := j.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: ns2})
	if firstAddr(t, second) == firstAddr(t, first) {
		t.Errorf("after a restart, a new endpoint got the kept one's address %s", firstAddr(t, first))
	}
	checkInterface(t, ns2, second, netip.MustParsePrefix(h.Subnets[0]))
	if err := j.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: req1.EndpointId, NetnsPath: ns1}); err != nil {
		t.Fatalf("Disconnect after a restart: %v", err)
	}
	if !interfaceGone(t, ns1, first.Interfaces[0].GetName()) {
		t.Error("Disconnect after a restart left the interface")
	}
	for _, id := range []string{netID, auto.NetworkId} {
		if err := j.d.DeleteNetwork(ctx(t), &networkv1.DeleteNetworkRequest{NetworkId: id}); err != nil {
			t.Errorf("DeleteNetwork after a restart: %v", err)
		}
	}
}

func samePrefix(a, b string) bool {
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	return err1 == nil && err2 == nil && pa.Masked() == pb.Masked()
}
