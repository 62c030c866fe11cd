package bridge_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"github.com/moss-containers/moss/netdrivers/bridge"
	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/networktest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// TestMain also serves the driver as a plugin process when the loader
// starts the test binary as one (TestPluginKilled).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == plugins.BuiltinRole {
		plugins.Serve(bridge.New("test", plugins.Logger()))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func harness() networktest.Harness {
	return networktest.Harness{
		Name: bridge.Name,
		New:  func(t *testing.T) plugins.NetworkDriver { return bridge.New("test", testLogger()) },
		Configure: func(t *testing.T) *basev1.ConfigureRequest {
			ns, _ := detached(t)
			return &basev1.ConfigureRequest{StateDir: t.TempDir(), RunDir: t.TempDir(), NetnsPath: ns}
		},
		NewNetns: func(t *testing.T) string { return networktest.NewNetns(t) },
	}
}

// TestConformance runs the suite with the test in namespaces of its own.
func TestConformance(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	networktest.Run(t, harness())
}

// TestConformanceRootless runs it where the plugin runs under rootlesskit:
// in the host's network namespace, which its user namespace does not own,
// so that no thread that entered another namespace can come back.
func TestConformanceRootless(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	networktest.Run(t, harness())
}

// TestTraffic: containers on one network reach each other; not those of
// another network; outbound traffic is masqueraded behind the uplink's
// address; an internal network reaches only itself.
func TestTraffic(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	netA, _, _ := e.network(&networkv1.CreateNetworkRequest{Name: "a"})
	netB, _, _ := e.network(&networkv1.CreateNetworkRequest{Name: "b"})
	netI, _, gwI := e.network(&networkv1.CreateNetworkRequest{Name: "i", Internal: true})
	a1, a2 := e.connect(netA, "a1"), e.connect(netA, "a2")
	b1 := e.connect(netB, "b1")
	i1, i2 := e.connect(netI, "i1"), e.connect(netI, "i2")
	for _, c := range []*container{a1, a2, b1, i1, i2} {
		echo(t, c.ns, c.addr, 8080)
	}
	outside := netip.MustParseAddr(uplinkGateway)
	echo(t, e.outside, outside, 9090)

	if got, err := call(a2.ns, a1.addr, 8080, 5*time.Second); err != nil || got != a2.addr.String()+" hello" {
		t.Errorf("a2 → a1 on one network: %q, %v", got, err)
	}
	if got, err := call(i2.ns, i1.addr, 8080, 5*time.Second); err != nil || got != i2.addr.String()+" hello" {
		t.Errorf("i2 → i1 on one internal network: %q, %v", got, err)
	}
	// Out through the uplink, masqueraded.
	if got, err := call(a1.ns, outside, 9090, 5*time.Second); err != nil || got != "10.0.2.100 hello" {
		t.Errorf("a1 → outside: %q, %v; want it from 10.0.2.100 (masqueraded)", got, err)
	}
	// Dropped packets: a dial times out. Short, since a working path
	// answers in microseconds.
	const blocked = 700 * time.Millisecond
	if got, err := call(b1.ns, a1.addr, 8080, blocked); err == nil {
		t.Errorf("b1 → a1 across networks got through: %q", got)
	}
	if got, err := call(a1.ns, b1.addr, 8080, blocked); err == nil {
		t.Errorf("a1 → b1 across networks got through: %q", got)
	}
	// The internal network has no default route …
	var routes []netlink.Route
	if err := networktest.Do(i1.ns, func() error {
		var err error
		routes, err = netlink.RouteList(nil, netlink.FAMILY_V4)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			t.Errorf("internal container has a default route: %v", r)
		}
	}
	if len(i1.resp.Routes) != 0 {
		t.Errorf("Connect to an internal network answered routes %v", i1.resp.Routes)
	}
	if _, err := call(i1.ns, outside, 9090, blocked); err == nil {
		t.Error("internal container reached the outside")
	}
	// … and with one made by hand, the firewall still stops it.
	if err := networktest.Do(i1.ns, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gwI.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := call(i1.ns, outside, 9090, blocked); err == nil {
		t.Errorf("internal container with a default route reached the outside: %q", got)
	}
	if got, err := call(i1.ns, a1.addr, 8080, blocked); err == nil {
		t.Errorf("internal container reached another network: %q", got)
	}
	if got, err := call(a1.ns, i1.addr, 8080, blocked); err == nil {
		t.Errorf("another network reached an internal container: %q", got)
	}
}

// TestMultiHomed: a container joins two networks (two endpoints, eth0 and
// eth1), keeps the first network's default route and reaches both.
func TestMultiHomed(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	netA, _, gwA := e.network(&networkv1.CreateNetworkRequest{Name: "a"})
	netB, _, _ := e.network(&networkv1.CreateNetworkRequest{Name: "b"})
	a1, b1 := e.connect(netA, "a1"), e.connect(netB, "b1")
	m := e.connect(netA, "m")
	resp, err := e.d.Connect(bg(t), &networkv1.ConnectRequest{NetworkId: netB, EndpointId: randomID(), NetnsPath: m.ns, ContainerId: m.id, ContainerName: "m", InterfaceName: "eth1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Routes) != 0 {
		t.Errorf("second network's Connect answered routes %v: the default route is the first network's", resp.Routes)
	}
	if len(m.resp.Routes) != 1 || m.resp.Routes[0].Gateway != gwA.String() {
		t.Errorf("first network's routes %v", m.resp.Routes)
	}
	for _, c := range []*container{a1, b1} {
		echo(t, c.ns, c.addr, 8080)
		if _, err := call(m.ns, c.addr, 8080, 5*time.Second); err != nil {
			t.Errorf("multi-homed container → %s: %v", c.name, err)
		}
	}
}

// TestDNS: names, short and full IDs and aliases of the network's own
// containers; no names on the default network; the rest forwarded and the
// upstream's answer (NXDOMAIN too) relayed; SERVFAIL without upstream.
func TestDNS(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	netA, _, gwA := e.network(&networkv1.CreateNetworkRequest{Name: "a"})
	netB, _, gwB := e.network(&networkv1.CreateNetworkRequest{Name: "b"})
	web := e.connect(netA, "web", "www", "Shared")
	db := e.connect(netA, "db", "shared")
	other := e.connect(netB, "other")
	if got := web.resp.DnsServers; len(got) != 1 || got[0] != gwA.String() {
		t.Errorf("dns_servers %v, want [%s]", got, gwA)
	}
	asker := db
	wantA := func(name string, want ...netip.Addr) {
		t.Helper()
		for _, proto := range []string{"udp", "tcp"} {
			m := query(t, asker.ns, gwA, name, dns.TypeA, proto)
			var ws []string
			for _, w := range want {
				ws = append(ws, w.String())
			}
			got := addrsOf(m)
			slices.Sort(got)
			slices.Sort(ws)
			if m.Rcode != dns.RcodeSuccess || !slices.Equal(got, ws) {
				t.Errorf("%s A %s: rcode %s, %v; want %v", proto, name, dns.RcodeToString[m.Rcode], got, ws)
			}
			for _, rr := range m.Answer {
				if rr.Header().Ttl != 600 {
					t.Errorf("TTL %d, want 600", rr.Header().Ttl)
				}
			}
		}
	}
	wantA("web", web.addr)
	wantA("WEB.", web.addr)
	wantA("www", web.addr)
	wantA(web.id[:12], web.addr)
	wantA(strings.ToUpper(web.id[:12]), web.addr)
	wantA("db", db.addr)
	wantA("shared", web.addr, db.addr)
	// A name with no IPv6: no data, not forwarded.
	if m := query(t, db.ns, gwA, "web", dns.TypeAAAA, "udp"); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("AAAA web: %v", m)
	}
	// Reverse.
	rev, _ := dns.ReverseAddr(web.addr.String())
	if m := query(t, db.ns, gwA, rev, dns.TypePTR, "udp"); len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "web." {
		t.Errorf("PTR %s: %v", rev, m.Answer)
	}
	// Another network's names are not this one's: forwarded, NXDOMAIN.
	if m := query(t, db.ns, gwA, "other", dns.TypeA, "udp"); m.Rcode != dns.RcodeNameError {
		t.Errorf("A other (on another network): %s %v, want NXDOMAIN from upstream", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if m := query(t, other.ns, gwB, "web", dns.TypeA, "udp"); m.Rcode != dns.RcodeNameError {
		t.Errorf("A web from network b: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	// Another network's DNS does not answer this one's containers.
	if m := query(t, other.ns, gwA, "web", dns.TypeA, "udp"); m.Rcode != dns.RcodeRefused {
		t.Errorf("network a's DNS asked from network b: %s %v, want REFUSED", dns.RcodeToString[m.Rcode], m.Answer)
	}
	// Forwarding.
	drain(e.upstream.queries)
	if m := query(t, db.ns, gwA, "example.test", dns.TypeA, "udp"); m.Rcode != dns.RcodeSuccess || !slices.Equal(addrsOf(m), []string{upstreamAnswer}) {
		t.Errorf("forwarded A example.test: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if m := query(t, db.ns, gwA, "example.test", dns.TypeA, "tcp"); m.Rcode != dns.RcodeSuccess || !slices.Equal(addrsOf(m), []string{upstreamAnswer}) {
		t.Errorf("forwarded A example.test over TCP: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if m := query(t, db.ns, gwA, "nx.example.test", dns.TypeA, "udp"); m.Rcode != dns.RcodeNameError {
		t.Errorf("forwarded nx.example.test: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
	if got := drain(e.upstream.queries); !slices.Contains(got, "example.test.") || !slices.Contains(got, "nx.example.test.") {
		t.Errorf("the upstream saw %v", got)
	}
	// Aliases change with a second Connect of the endpoint.
	resp, err := e.d.Connect(bg(t), &networkv1.ConnectRequest{NetworkId: netA, EndpointId: web.endpoint, NetnsPath: web.ns, ContainerId: web.id, ContainerName: "/web", Aliases: []string{"w3"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Interfaces[0].Addresses[0] != web.resp.Interfaces[0].Addresses[0] {
		t.Errorf("reconnect changed the address: %v", resp.Interfaces)
	}
	wantA("w3", web.addr)
	if m := query(t, asker.ns, gwA, "www", dns.TypeA, "udp"); m.Rcode != dns.RcodeNameError {
		t.Errorf("A www after the alias went: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	// Disconnected: the name goes at once.
	if err := e.d.Disconnect(bg(t), &networkv1.DisconnectRequest{NetworkId: netA, EndpointId: db.endpoint}); err != nil {
		t.Fatal(err)
	}
	asker = web
	for _, name := range []string{"db", "shared"} { // web's aliases are w3 alone now
		if m := query(t, asker.ns, gwA, name, dns.TypeA, "udp"); m.Rcode != dns.RcodeNameError {
			t.Errorf("A %s after db was disconnected: %s %v", name, dns.RcodeToString[m.Rcode], m.Answer)
		}
	}

	// The default network resolves no names; an internal network resolves
	// its own but forwards nothing.
	netD, _, gwD := e.network(&networkv1.CreateNetworkRequest{Name: "bridge", Default: true})
	d1, d2 := e.connect(netD, "d1"), e.connect(netD, "d2")
	if m := query(t, d2.ns, gwD, "d1", dns.TypeA, "udp"); m.Rcode != dns.RcodeNameError {
		t.Errorf("A d1 on the default network: %s %v, want it forwarded (NXDOMAIN)", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if m := query(t, d2.ns, gwD, d1.id[:12], dns.TypeA, "udp"); m.Rcode != dns.RcodeNameError {
		t.Errorf("short ID on the default network: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if m := query(t, d2.ns, gwD, "example.test", dns.TypeA, "udp"); !slices.Equal(addrsOf(m), []string{upstreamAnswer}) {
		t.Errorf("forwarded from the default network: %v", m)
	}
	netI, _, gwI := e.network(&networkv1.CreateNetworkRequest{Name: "i", Internal: true})
	i1, i2 := e.connect(netI, "i1"), e.connect(netI, "i2")
	if m := query(t, i2.ns, gwI, "i1", dns.TypeA, "udp"); !slices.Equal(addrsOf(m), []string{i1.addr.String()}) {
		t.Errorf("A i1 on the internal network: %v", m)
	}
	drain(e.upstream.queries)
	if m := query(t, i2.ns, gwI, "example.test", dns.TypeA, "udp"); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("internal network forwarded: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if got := drain(e.upstream.queries); len(got) != 0 {
		t.Errorf("the upstream saw %v from an internal network", got)
	}
	// Many containers with one alias: over UDP without EDNS the answer is
	// truncated to 512 bytes, over TCP it is whole.
	var many []netip.Addr
	for n := 0; n < 40; n++ {
		many = append(many, e.connect(netA, fmt.Sprintf("m%d", n), "many").addr)
	}
	if m := query(t, web.ns, gwA, "many", dns.TypeA, "udp"); !m.Truncated || len(m.Answer) >= len(many) {
		t.Errorf("40 addresses over UDP: truncated %v, %d answers", m.Truncated, len(m.Answer))
	}
	if m := query(t, web.ns, gwA, "many", dns.TypeA, "tcp"); m.Truncated || len(m.Answer) != len(many) {
		t.Errorf("40 addresses over TCP: truncated %v, %d answers", m.Truncated, len(m.Answer))
	}
	// Upstream gone: SERVFAIL.
	e.upstream.stop()
	if m := query(t, web.ns, gwA, "example.test", dns.TypeA, "udp"); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("without upstream: %s %v, want SERVFAIL", dns.RcodeToString[m.Rcode], m.Answer)
	}
	wantA("web", web.addr)
}

func drain(c chan string) []string {
	var out []string
	for {
		select {
		case s := <-c:
			out = append(out, s)
		default:
			return out
		}
	}
}

// TestAddressing: the default network's plan, bridge names, the pool
// skipping the namespace's own addresses, overlaps with them refused,
// forwarding on, the nftables table there.
func TestAddressing(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	// An address of the namespace in the pool: the pool goes round it.
	if err := networktest.Do(e.ns, func() error {
		la := netlink.NewLinkAttrs()
		la.Name = "other0" // a device that is not the driver's (no dummy driver in every kernel)
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return err
		}
		return configure("other0", "10.89.0.7/24", "")
	}); err != nil {
		t.Fatal(err)
	}
	defID, defSubnet, defGw := e.network(&networkv1.CreateNetworkRequest{Name: "bridge", Default: true})
	if defSubnet.String() != "10.88.0.0/16" || defGw.String() != "10.88.0.1" {
		t.Errorf("default network %s gw %s", defSubnet, defGw)
	}
	userID, userSubnet, userGw := e.network(&networkv1.CreateNetworkRequest{Name: "u"})
	if userSubnet.String() != "10.89.1.0/24" || userGw.String() != "10.89.1.1" {
		t.Errorf("first user network %s gw %s, want 10.89.1.0/24 (10.89.0.0/24 is the namespace's)", userSubnet, userGw)
	}
	_, next, _ := e.network(&networkv1.CreateNetworkRequest{Name: "u2"})
	if next.String() != "10.89.2.0/24" {
		t.Errorf("second user network %s", next)
	}
	names := links(t, e.ns)
	for _, want := range []string{bridge.DefaultBridge, bridge.BridgePrefix + userID[:8]} {
		if !slices.Contains(names, want) {
			t.Errorf("no bridge %s in the namespace: %v", want, names)
		}
	}
	_ = defID
	for subnet, kind := range map[string]error{
		"10.0.2.0/24":  plugins.ErrInvalid, // the uplink's
		"10.0.0.0/8":   plugins.ErrExists,  // over the networks'
		"10.89.0.0/28": plugins.ErrInvalid, // other0's
		"10.88.5.0/24": plugins.ErrExists,  // in the default network
	} {
		_, err := e.d.CreateNetwork(bg(t), &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "x", Ipam: []*networkv1.IPAMConfig{{Subnet: subnet}}})
		if !errors.Is(err, kind) {
			t.Errorf("subnet %s: %v, want kind %v", subnet, err, kind)
		}
	}
	_, err := e.d.CreateNetwork(bg(t), &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "x", Ipam: []*networkv1.IPAMConfig{{Subnet: "10.88.5.0/24"}}})
	if err == nil || !strings.Contains(err.Error(), `"bridge"`) {
		t.Errorf("the overlap error should name the network: %v", err)
	}
	if _, err := e.d.CreateNetwork(bg(t), &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "v6", Ipv6: true}); !errors.Is(err, plugins.ErrUnsupported) {
		t.Errorf("ipv6: %v, want Unsupported", err)
	}
	if _, err := e.d.CreateNetwork(bg(t), &networkv1.CreateNetworkRequest{NetworkId: "bad/id", Name: "x"}); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("network id with a slash: %v", err)
	}
	// Forwarding on in the bridge namespace, the table there.
	if err := networktest.Do(e.ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err != nil {
			return err
		}
		if string(b) != "1\n" {
			t.Errorf("ip_forward %q in the bridge namespace", b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rules := nftRules(t, e.ns)
	if rules["forward"] < 3 || rules["postrouting"] != 3 {
		t.Errorf("nftables rules per chain: %v", rules)
	}
	// Deleting the networks removes bridges and, with the last, the table.
	for _, id := range []string{defID, userID} {
		if err := e.d.DeleteNetwork(bg(t), &networkv1.DeleteNetworkRequest{NetworkId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if names := links(t, e.ns); slices.Contains(names, bridge.DefaultBridge) || slices.Contains(names, bridge.BridgePrefix+userID[:8]) {
		t.Errorf("bridges left: %v", names)
	}
	if rules := nftRules(t, e.ns); rules["postrouting"] != 1 {
		t.Errorf("after deleting two networks, rules %v", rules)
	}
}
