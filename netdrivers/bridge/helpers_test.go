package bridge_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/netdrivers/bridge"
	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/networktest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// Addresses of the uplink that stands in for rootlesskit's tap device.
const (
	uplinkAddr    = "10.0.2.100/24" // the detached namespace's end, tap0
	uplinkGateway = "10.0.2.2"      // the outside end, in its own namespace
)

func testLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "bridge", Output: os.Stderr, Level: hclog.Warn})
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func bg(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// detached makes a namespace like rootlesskit's detached one — tap0 with
// 10.0.2.100/24 and the default route via 10.0.2.2 — and returns it with
// the namespace at tap0's other end ("outside", 10.0.2.2/24), where a
// test can listen for what containers send out.
func detached(t *testing.T) (ns, outside string) {
	t.Helper()
	ns, outside = networktest.NewNetns(t), networktest.NewNetns(t)
	of, err := os.Open(outside)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	err = networktest.Do(ns, func() error {
		la := netlink.NewLinkAttrs()
		la.Name = "tap0"
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "uplink0", PeerNamespace: netlink.NsFd(int(of.Fd()))}); err != nil {
			return err
		}
		return configure("tap0", uplinkAddr, uplinkGateway)
	})
	if err != nil {
		t.Fatalf("uplink: %v", err)
	}
	if err := networktest.Do(outside, func() error { return configure("uplink0", "10.0.2.2/24", "") }); err != nil {
		t.Fatalf("uplink: %v", err)
	}
	return ns, outside
}

// configure gives the interface name of the current namespace an
// address, brings it up and, if gw is set, routes by gw.
func configure(name, cidr, gw string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	if gw != "" {
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)})
	}
	return nil
}

// tmpfs returns a directory on a tmpfs of its own, as the agent's run
// directory is in production.
func tmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700"); err != nil {
		t.Fatalf("tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// env is one driver over gRPC, its bridge namespace and the outside.
type env struct {
	t        *testing.T
	raw      *bridge.Driver
	d        plugins.NetworkDriver
	cfg      *basev1.ConfigureRequest
	ns       string // the bridge namespace
	outside  string
	upstream *fakeUpstream
}

// newEnv configures a driver whose DNS forwards to a fake upstream on
// 127.0.0.1 of the test's own namespace (port 53 if it may, else any).
func newEnv(t *testing.T) *env {
	t.Helper()
	ns, outside := detached(t)
	e := &env{t: t, ns: ns, outside: outside}
	e.upstream = startUpstream(t)
	resolv := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfg = &basev1.ConfigureRequest{
		StateDir: t.TempDir(), RunDir: tmpfs(t), NetnsPath: ns,
		Options: map[string]string{bridge.OptionResolvConf: resolv},
	}
	e.start()
	return e
}

// start (re)starts the driver on e's state.
func (e *env) start() {
	e.t.Helper()
	if e.raw != nil {
		e.raw.Close()
	}
	e.raw = bridge.New("test", testLogger())
	raw := e.raw
	e.t.Cleanup(func() { raw.Close() })
	e.d = plugins.TestNetworkClient(e.t, raw)
	if err := e.d.Configure(bg(e.t), e.cfg); err != nil {
		e.t.Fatalf("Configure: %v", err)
	}
}

// network creates a network and returns its id and addressing.
func (e *env) network(req *networkv1.CreateNetworkRequest) (string, netip.Prefix, netip.Addr) {
	e.t.Helper()
	if req.NetworkId == "" {
		req.NetworkId = randomID()
	}
	resp, err := e.d.CreateNetwork(bg(e.t), req)
	if err != nil {
		e.t.Fatalf("CreateNetwork %s: %v", req.Name, err)
	}
	return req.NetworkId, netip.MustParsePrefix(resp.Ipam[0].Subnet), netip.MustParseAddr(resp.Ipam[0].Gateway)
}

// container is a container's namespace connected to a network.
type container struct {
	id, name, ns string
	endpoint     string
	addr         netip.Addr
	resp         *networkv1.ConnectResponse
}

func (e *env) connect(netID, name string, aliases ...string) *container {
	e.t.Helper()
	c := &container{id: randomID(), name: name, ns: networktest.NewNetns(e.t), endpoint: randomID()}
	e.join(c, netID, aliases...)
	return c
}

// join connects c to one more network.
func (e *env) join(c *container, netID string, aliases ...string) {
	e.t.Helper()
	resp, err := e.d.Connect(bg(e.t), &networkv1.ConnectRequest{
		NetworkId: netID, EndpointId: c.endpoint, NetnsPath: c.ns,
		ContainerId: c.id, ContainerName: "/" + c.name, Aliases: aliases,
	})
	if err != nil {
		e.t.Fatalf("Connect %s: %v", c.name, err)
	}
	c.resp = resp
	c.addr = netip.MustParsePrefix(resp.Interfaces[0].Addresses[0]).Addr()
}

// echo listens on addr:port in ns and echoes one line per connection,
// prefixed with the peer's address.
func echo(t *testing.T, ns string, addr netip.Addr, port int) {
	t.Helper()
	var ln net.Listener
	err := networktest.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(addr, uint16(port)).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s %s", host, line)
			}()
		}
	}()
}

// call dials addr:port from ns and returns what the echo server answered:
// the address it saw the connection come from, and the line.
func call(ns string, addr netip.Addr, port int, timeout time.Duration) (string, error) {
	var conn net.Conn
	err := networktest.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", netip.AddrPortFrom(addr, uint16(port)).String(), timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "hello\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

// query asks the DNS server at addr:53 from ns.
func query(t *testing.T, ns string, server netip.Addr, name string, qtype uint16, proto string) *dns.Msg {
	t.Helper()
	var resp *dns.Msg
	err := networktest.Do(ns, func() error {
		c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		var err error
		resp, _, err = c.Exchange(m, netip.AddrPortFrom(server, 53).String())
		return err
	})
	if err != nil {
		t.Fatalf("DNS query %s %s: %v", dns.TypeToString[qtype], name, err)
	}
	return resp
}

// addrsOf returns the A records of a response.
func addrsOf(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// fakeUpstream is a nameserver on 127.0.0.1:53 of the test's namespace:
// example.test has an address, every other name is NXDOMAIN.
type fakeUpstream struct {
	udp, tcp *dns.Server
	queries  chan string
}

const upstreamAnswer = "192.0.2.99"

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{queries: make(chan string, 100)}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		select {
		case u.queries <- r.Question[0].Name:
		default:
		}
		m := new(dns.Msg)
		m.SetReply(r)
		if strings.EqualFold(r.Question[0].Name, "example.test.") && r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(upstreamAnswer)})
		} else if !strings.EqualFold(r.Question[0].Name, "example.test.") {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp4", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("fake upstream: %v", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("fake upstream: %v", err)
	}
	u.udp = &dns.Server{PacketConn: pc, Handler: h}
	u.tcp = &dns.Server{Listener: ln, Handler: h}
	for _, s := range []*dns.Server{u.udp, u.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(u.stop)
	return u
}

func (u *fakeUpstream) stop() {
	_ = u.udp.Shutdown()
	_ = u.tcp.Shutdown()
}

// links lists the interface names of the namespace at ns.
func links(t *testing.T, ns string) []string {
	t.Helper()
	var names []string
	err := networktest.Do(ns, func() error {
		ll, err := netlink.LinkList()
		for errors.Is(err, netlink.ErrDumpInterrupted) {
			ll, err = netlink.LinkList()
		}
		for _, l := range ll {
			names = append(names, l.Attrs().Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func hasPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// nftRules counts the rules per chain of the driver's table in ns.
func nftRules(t *testing.T, ns string) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := networktest.Do(ns, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
		if err != nil {
			return err
		}
		for _, tb := range tables {
			if tb.Name != "moss" {
				continue
			}
			chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
			if err != nil {
				return err
			}
			for _, ch := range chains {
				if ch.Table.Name != "moss" {
					continue
				}
				rules, err := c.GetRules(tb, ch)
				if err != nil {
					return err
				}
				out[ch.Name] = len(rules)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	return out
}
