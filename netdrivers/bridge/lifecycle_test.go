package bridge_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/netdrivers/bridge"
	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/networktest"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// TestNoLeak: 200 Connect/Disconnect cycles leave no veth, no interface,
// no address held, no file descriptor. It logs the latencies, through
// gRPC as the agent calls and on the driver directly.
func TestNoLeak(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	netID, _, _ := e.network(&networkv1.CreateNetworkRequest{Name: "leak"})
	other := e.connect(netID, "other") // one that stays
	const cycles = 200
	// A namespace per cycle, as each container start has; made before, so
	// that their files are not counted as leaks.
	var nss []string
	for n := 0; n < 2*cycles; n++ {
		nss = append(nss, networktest.NewNetns(t))
	}
	fdsBefore := openFDs(t)
	measure := func(d plugins.NetworkDriver, nss []string) (conn, disc []time.Duration) {
		for n, ns := range nss {
			ep := randomID()
			start := time.Now()
			resp, err := d.Connect(bg(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns, ContainerId: randomID(), ContainerName: "c"})
			conn = append(conn, time.Since(start))
			if err != nil {
				t.Fatalf("cycle %d: Connect: %v", n, err)
			}
			if resp.Interfaces[0].Addresses[0] == other.resp.Interfaces[0].Addresses[0] {
				t.Fatalf("cycle %d: the address of a connected endpoint was handed out again", n)
			}
			start = time.Now()
			if err := d.Disconnect(bg(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns}); err != nil {
				t.Fatalf("cycle %d: Disconnect: %v", n, err)
			}
			disc = append(disc, time.Since(start))
		}
		return conn, disc
	}
	grpcConn, grpcDisc := measure(e.d, nss[:cycles])
	rawConn, rawDisc := measure(e.raw, nss[cycles:])
	t.Logf("Connect over gRPC: %s; Disconnect over gRPC: %s", stats(grpcConn), stats(grpcDisc))
	t.Logf("Connect, driver alone: %s; Disconnect, driver alone: %s", stats(rawConn), stats(rawDisc))
	// What the kernel takes for the same devices, measured alongside: the
	// machines are shared and noisy, the difference is the driver's.
	t.Logf("kernel floor (veth pair into a namespace, address, up, route): %s", stats(floor(t, e.ns, 50)))
	waitFor(t, "the veths of the disconnected endpoints to go", func() bool {
		return len(hasPrefix(links(t, e.ns), "mossv")) == 1
	})
	// Container starts without stops: no deletion in flight.
	var starts []time.Duration
	var eps []string
	for n := 0; n < 50; n++ {
		ep := randomID()
		start := time.Now()
		if _, err := e.d.Connect(bg(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: nss[n], ContainerId: randomID(), ContainerName: "c"}); err != nil {
			t.Fatal(err)
		}
		starts = append(starts, time.Since(start))
		eps = append(eps, ep)
	}
	t.Logf("Connect over gRPC, no deletions in flight: %s", stats(starts))
	for _, ep := range eps {
		if err := e.d.Disconnect(bg(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: ep}); err != nil {
			t.Fatal(err)
		}
	}

	// Deletions run in the background: wait for them.
	waitFor(t, "the veths of the disconnected endpoints to go", func() bool {
		return len(hasPrefix(links(t, e.ns), "mossv")) == 1
	})
	for _, ns := range nss {
		if names := links(t, ns); !slices.Equal(names, []string{"lo"}) {
			t.Fatalf("interfaces left in a container's namespace: %v", names)
		}
	}
	// The state holds the endpoint that stays, only.
	files, err := os.ReadDir(filepath.Join(e.cfg.RunDir, "endpoints", netID))
	if err != nil || len(files) != 1 {
		t.Errorf("state has %d endpoint files (%v), want 1", len(files), err)
	}
	// Every address but the kept one is free again: a /24 has 252 more.
	for n := 0; n < 252; n++ {
		if _, err := e.d.Connect(bg(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: networktest.NewNetns(t)}); err != nil {
			t.Fatalf("address %d of 252: %v", n+1, err)
		}
	}
	if _, err := e.d.Connect(bg(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomID(), NetnsPath: nss[0]}); err == nil {
		t.Error("a full /24 gave a 254th address")
	}
	if got := openFDs(t) - fdsBefore; got > 8 {
		t.Errorf("%d more file descriptors open after the cycles", got)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func stats(d []time.Duration) string {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))].Round(time.Microsecond) }
	return "median " + q(0.5).String() + ", p90 " + q(0.9).String() + ", max " + q(1).String()
}

// TestGoneNamespace: a container's namespace that went away — Disconnect
// is no error and frees the address; a restarted driver forgets
// endpoints whose veth is gone, and keeps the others.
func TestGoneNamespace(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	netID, _, _ := e.network(&networkv1.CreateNetworkRequest{Name: "gone"})
	connect := func(ns, addr string) (*networkv1.ConnectResponse, string, error) {
		ep := randomID()
		resp, err := e.d.Connect(bg(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns, Ipv4Address: addr})
		return resp, ep, err
	}
	ns1, remove1 := networktest.NewNetnsRemovable(t)
	resp1, ep1, err := connect(ns1, "")
	if err != nil {
		t.Fatal(err)
	}
	addr1 := ipOf(resp1)
	if err := remove1(); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Disconnect(bg(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: ep1, NetnsPath: ns1}); err != nil {
		t.Errorf("Disconnect after the namespace went: %v", err)
	}
	if _, _, err := connect(networktest.NewNetns(t), addr1); err != nil {
		t.Errorf("address %s of a disconnected gone namespace: %v", addr1, err)
	}

	// Gone while the driver was down.
	ns2, remove2 := networktest.NewNetnsRemovable(t)
	resp2, _, err := connect(ns2, "")
	if err != nil {
		t.Fatal(err)
	}
	ns3 := networktest.NewNetns(t)
	resp3, _, err := connect(ns3, "")
	if err != nil {
		t.Fatal(err)
	}
	e.raw.Close()
	if err := remove2(); err != nil {
		t.Fatal(err)
	}
	// The kernel destroys a namespace's devices asynchronously.
	waitFor(t, "the veth of the removed namespace to go", func() bool {
		return len(hasPrefix(links(t, e.ns), "mossv")) == 2 // ep1's replacement and ns3's
	})
	e.start()
	if _, _, err := connect(networktest.NewNetns(t), ipOf(resp2)); err != nil {
		t.Errorf("after a restart, the address of an endpoint whose namespace went: %v", err)
	}
	if _, _, err := connect(networktest.NewNetns(t), ipOf(resp3)); err == nil {
		t.Errorf("after a restart, the address %s of a kept endpoint was handed out", ipOf(resp3))
	}
}

func ipOf(r *networkv1.ConnectResponse) string {
	ip, _, _ := net.ParseCIDR(r.Interfaces[0].Addresses[0])
	return ip.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPluginKilled runs the driver as the agent does — a plugin process
// started by the loader — kills it with SIGKILL and checks that the
// restarted process carries on: the containers' interfaces are untouched
// and keep talking, names resolve, new endpoints get free addresses.
func TestPluginKilled(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := detached(t)
	var created []*networkv1.CreateNetworkRequest
	m := plugins.NewManager(plugins.LoaderConfig{
		Self:     self,
		Builtins: map[string][]string{plugins.KindNetwork: {bridge.Name}},
		StateDir: t.TempDir(), RunDir: t.TempDir(), NetNS: ns,
		Log: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
		OnStart: func(ctx context.Context, name string, driver any) error {
			// As the agent: every known network again.
			d := driver.(plugins.NetworkDriver)
			for _, req := range created {
				if _, err := d.CreateNetwork(ctx, req); err != nil {
					return err
				}
			}
			return nil
		},
	})
	m.Start(context.Background())
	t.Cleanup(m.Stop)
	d, err := m.Network(bridge.Name)
	if err != nil {
		t.Fatal(err)
	}
	req := &networkv1.CreateNetworkRequest{NetworkId: randomID(), Name: "k"}
	resp, err := d.CreateNetwork(bg(t), req)
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, req)
	gw := netip.MustParseAddr(resp.Ipam[0].Gateway)
	e := &env{t: t, d: d, ns: ns}
	c1, c2 := e.connect(req.NetworkId, "one"), e.connect(req.NetworkId, "two")
	echo(t, c1.ns, c1.addr, 8080)
	index := ifindex(t, c2.ns)

	pid := pluginPid(t, m)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin to be restarted", func() bool {
		p := pluginPid(t, m)
		return p != 0 && p != pid
	})
	if _, err := call(c2.ns, c1.addr, 8080, 5*time.Second); err != nil {
		t.Errorf("two → one after the plugin was killed: %v", err)
	}
	if got := ifindex(t, c2.ns); got != index {
		t.Errorf("the container's interface was made again (index %d, was %d)", got, index)
	}
	if m := query(t, c2.ns, gw, "one", dns.TypeA, "udp"); !slices.Equal(addrsOf(m), []string{c1.addr.String()}) {
		t.Errorf("A one from the restarted plugin: %v", m)
	}
	c3 := e.connect(req.NetworkId, "three")
	if c3.addr == c1.addr || c3.addr == c2.addr {
		t.Errorf("the restarted plugin handed out %s again", c3.addr)
	}
	if err := d.Disconnect(bg(t), &networkv1.DisconnectRequest{NetworkId: req.NetworkId, EndpointId: c1.endpoint}); err != nil {
		t.Errorf("Disconnect of an endpoint of the killed plugin: %v", err)
	}
	waitFor(t, "the disconnected container's eth0 to go", func() bool { return !slices.Contains(links(t, c1.ns), "eth0") })
	if err := d.DeleteNetwork(bg(t), &networkv1.DeleteNetworkRequest{NetworkId: req.NetworkId}); err != nil {
		t.Errorf("DeleteNetwork: %v", err)
	}
}

func pluginPid(t *testing.T, m *plugins.Manager) int {
	for _, s := range m.List() {
		if s.Name == bridge.Name && s.Status == plugins.StatusRunning {
			return s.Pid
		}
	}
	return 0
}

func ifindex(t *testing.T, ns string) int {
	t.Helper()
	idx := 0
	if err := networktest.Do(ns, func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			idx = l.Attrs().Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return idx
}

// floor times what Connect asks of the kernel, done by hand: the veth pair
// with its peer made in a fresh namespace, then address, up and route
// from a thread there.
func floor(t *testing.T, bridgeNs string, n int) []time.Duration {
	var out []time.Duration
	err := networktest.Do(bridgeNs, func() error {
		la := netlink.NewLinkAttrs()
		la.Name = "floorbr0"
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return err
		}
		br, err := netlink.LinkByName("floorbr0")
		if err != nil {
			return err
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		for i := 0; i < n; i++ {
			ns := networktest.NewNetns(t)
			f, err := os.Open(ns)
			if err != nil {
				return err
			}
			start := time.Now()
			attrs := netlink.NewLinkAttrs()
			attrs.Name, attrs.MasterIndex, attrs.Flags = "floor0", br.Attrs().Index, net.FlagUp
			if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(f.Fd()))}); err != nil {
				return err
			}
			err = networktest.Do(ns, func() error {
				ch, err := netlink.NewHandle(unix.NETLINK_ROUTE)
				if err != nil {
					return err
				}
				defer ch.Close()
				l, err := ch.LinkByName("eth0")
				if err != nil {
					return err
				}
				if err := ch.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 250, 0, 2), Mask: net.CIDRMask(24, 32)}}); err != nil {
					return err
				}
				if err := ch.LinkSetUp(l); err != nil {
					return err
				}
				return ch.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IPv4(10, 250, 0, 1)})
			})
			out = append(out, time.Since(start))
			f.Close()
			if err != nil {
				return err
			}
			if l, err := h.LinkByName("floor0"); err == nil {
				_ = h.LinkDel(l)
			}
		}
		return netlink.LinkDel(br)
	})
	if err != nil {
		t.Fatalf("floor: %v", err)
	}
	return out
}

// TestOwnNamespace: with no NetnsPath (Moss run as root) the bridges, the
// table and the DNS listeners are in the plugin's own namespace.
func TestOwnNamespace(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	e.cfg.NetnsPath = ""
	e.start()
	netID, _, gw := e.network(&networkv1.CreateNetworkRequest{Name: "own"})
	own := links(t, "/proc/thread-self/ns/net")
	if !slices.Contains(own, bridge.BridgePrefix+netID[:8]) {
		t.Fatalf("no bridge in the plugin's own namespace: %v", own)
	}
	c1, c2 := e.connect(netID, "one"), e.connect(netID, "two")
	echo(t, c1.ns, c1.addr, 8080)
	if _, err := call(c2.ns, c1.addr, 8080, 5*time.Second); err != nil {
		t.Errorf("two → one: %v", err)
	}
	if m := query(t, c2.ns, gw, "one", dns.TypeA, "udp"); !slices.Equal(addrsOf(m), []string{c1.addr.String()}) {
		t.Errorf("A one: %v", m)
	}
	if m := query(t, c2.ns, gw, "example.test", dns.TypeA, "udp"); !slices.Equal(addrsOf(m), []string{upstreamAnswer}) {
		t.Errorf("forwarded: %v", m)
	}
	if rules := nftRules(t, "/proc/thread-self/ns/net"); rules["postrouting"] != 1 {
		t.Errorf("rules in the plugin's own namespace: %v", rules)
	}
}

// TestConcurrentConnects: the agent starts containers at once; each gets
// an address of its own and a working interface, and each name resolves.
func TestConcurrentConnects(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	netID, _, gw := e.network(&networkv1.CreateNetworkRequest{Name: "many"})
	const n = 24
	cs := make([]*container, n)
	for i := range cs {
		cs[i] = &container{id: randomID(), name: fmt.Sprintf("c%d", i), ns: networktest.NewNetns(t), endpoint: randomID()}
	}
	errs := make(chan error, n)
	for _, c := range cs {
		go func() {
			resp, err := e.d.Connect(context.Background(), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: c.endpoint, NetnsPath: c.ns, ContainerId: c.id, ContainerName: c.name})
			if err == nil {
				c.addr = netip.MustParsePrefix(resp.Interfaces[0].Addresses[0]).Addr()
			}
			errs <- err
		}()
	}
	for range cs {
		if err := <-errs; err != nil {
			t.Fatalf("Connect: %v", err)
		}
	}
	seen := map[netip.Addr]bool{}
	for _, c := range cs {
		if seen[c.addr] {
			t.Fatalf("address %s handed out twice", c.addr)
		}
		seen[c.addr] = true
	}
	echo(t, cs[0].ns, cs[0].addr, 8080)
	for _, c := range cs[1:] {
		if _, err := call(c.ns, cs[0].addr, 8080, 5*time.Second); err != nil {
			t.Errorf("%s → c0: %v", c.name, err)
		}
		if m := query(t, cs[0].ns, gw, c.name, dns.TypeA, "udp"); !slices.Equal(addrsOf(m), []string{c.addr.String()}) {
			t.Errorf("A %s: %v", c.name, m)
		}
	}
	// And all go at once.
	for _, c := range cs {
		go func() {
			errs <- e.d.Disconnect(context.Background(), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: c.endpoint})
		}()
	}
	for range cs {
		if err := <-errs; err != nil {
			t.Errorf("Disconnect: %v", err)
		}
	}
	waitFor(t, "the veths to go", func() bool { return len(hasPrefix(links(t, e.ns), "mossv")) == 0 })
}
