package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/networktest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// The tests run Debian's CNI plugins (containernetworking-plugins) for
// real. Each test that touches namespaces runs isolated
// (networktest.IsolateHostNetns): root of a user namespace of its own,
// in the caller's network namespace, which it cannot change — as the
// plugin under rootlesskit — with a "detached" namespace for the
// networks and one per container, bind-mounted on files.

// testLogger logs into the test.
func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "cni", Level: hclog.Debug, Output: logWriter{t}})
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// env is one configured adapter over gRPC, as the agent sees it.
type env struct {
	d     plugins.NetworkDriver
	cfg   *basev1.ConfigureRequest
	netns string // the detached namespace
	conf  string // conf_dir
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// newEnv configures an adapter with a detached namespace and a conf dir
// of its own.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{netns: networktest.NewNetns(t), conf: t.TempDir()}
	e.cfg = &basev1.ConfigureRequest{
		StateDir: t.TempDir(), RunDir: t.TempDir(), NetnsPath: e.netns,
		Options: map[string]string{"conf_dir": e.conf},
	}
	e.d = e.restart(t)
	return e
}

// restart stands in for a new plugin process on the same state.
func (e *env) restart(t *testing.T) plugins.NetworkDriver {
	t.Helper()
	d := plugins.TestNetworkClient(t, newDriver(testLogger(t)))
	if err := d.Configure(ctx(t), e.cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	e.d = d
	return d
}

func (e *env) create(t *testing.T, req *networkv1.CreateNetworkRequest) *networkv1.CreateNetworkResponse {
	t.Helper()
	if req.NetworkId == "" {
		req.NetworkId = randomHex()
	}
	resp, err := e.d.CreateNetwork(ctx(t), req)
	if err != nil {
		t.Fatalf("CreateNetwork %q: %v", req.Name, err)
	}
	return resp
}

func (e *env) connect(t *testing.T, req *networkv1.ConnectRequest) *networkv1.ConnectResponse {
	t.Helper()
	if req.EndpointId == "" {
		req.EndpointId = randomHex()
	}
	resp, err := e.d.Connect(ctx(t), req)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return resp
}

var idCount int

func randomHex() string {
	idCount++
	return fmt.Sprintf("%08x%056x", os.Getpid(), idCount)
}

// addrOf is the first address of the first interface of resp.
func addrOf(t *testing.T, resp *networkv1.ConnectResponse) netip.Prefix {
	t.Helper()
	if len(resp.GetInterfaces()) == 0 || len(resp.Interfaces[0].GetAddresses()) == 0 {
		t.Fatalf("Connect answered no address: %v", resp)
	}
	p, err := netip.ParsePrefix(resp.Interfaces[0].Addresses[0])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// link returns the interface name in the namespace at path; nil if
// there is none.
func link(t *testing.T, path, name string) *net.Interface {
	t.Helper()
	var ifc *net.Interface
	do := func(fn func() error) error { return fn() }
	if path != "" {
		do = func(fn func() error) error { return networktest.Do(path, fn) }
	}
	if err := do(func() error {
		ifc, _ = net.InterfaceByName(name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ifc
}

// addrsOf lists the addresses of an interface in the namespace at path.
func addrsOf(t *testing.T, path, name string) []string {
	t.Helper()
	var out []string
	if err := networktest.Do(path, func() error {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		for _, a := range addrs {
			out = append(out, a.String())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// reach checks a TCP connection from the namespace from to addr, listened
// on in the namespace to.
func reach(t *testing.T, from, to string, addr netip.Addr) {
	t.Helper()
	var ln net.Listener
	if err := networktest.Do(to, func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "hello from "+addr.String())
	}()
	var conn net.Conn
	if err := networktest.Do(from, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to %s: %v", ln.Addr(), err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "hello from "+addr.String() {
		t.Fatalf("read from %s: %q, %v", ln.Addr(), b, err)
	}
}

// TestConformance runs Moss's network driver suite against the adapter
// with generated bridge networks.
func TestConformance(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	networktest.Run(t, networktest.Harness{
		Name: "cni",
		New:  func(t *testing.T) plugins.NetworkDriver { return newDriver(testLogger(t)) },
		Configure: func(t *testing.T) *basev1.ConfigureRequest {
			return &basev1.ConfigureRequest{StateDir: t.TempDir(), RunDir: t.TempDir(), NetnsPath: networktest.NewNetns(t)}
		},
		NewNetns: func(t *testing.T) string { return networktest.NewNetns(t) },
	})
}

// TestGeneratedNetwork: without options the adapter writes a bridge +
// host-local list; the bridge is made in the detached namespace (the
// plugin's own cannot be changed), two containers reach each other over
// TCP, Disconnect and DeleteNetwork clean up.
func TestGeneratedNetwork(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	netID := randomHex()
	created := e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "gen"})
	if len(created.GetIpam()) != 1 {
		t.Fatalf("CreateNetwork answered %v, want one subnet", created.GetIpam())
	}
	subnet := netip.MustParsePrefix(created.Ipam[0].Subnet)
	if !netip.MustParsePrefix("10.90.0.0/16").Contains(subnet.Addr()) || subnet.Bits() != 24 {
		t.Errorf("chosen subnet %s is not a 10.90.N.0/24", subnet)
	}
	if gw := created.Ipam[0].Gateway; gw != subnet.Addr().Next().String() {
		t.Errorf("gateway %q, want %s", gw, subnet.Addr().Next())
	}
	gen := filepath.Join(e.cfg.StateDir, "net.d", netID+".conflist")
	b, err := os.ReadFile(gen)
	if err != nil {
		t.Fatalf("generated conflist: %v", err)
	}
	t.Logf("%s:\n%s", gen, b)
	// A second network gets another subnet.
	other := e.create(t, &networkv1.CreateNetworkRequest{Name: "gen2"})
	if o := netip.MustParsePrefix(other.Ipam[0].Subnet); o.Overlaps(subnet) {
		t.Errorf("second network got %s, overlapping %s", o, subnet)
	}

	ns1, ns2 := networktest.NewNetns(t), networktest.NewNetns(t)
	r1 := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns1, InterfaceName: "eth0"})
	r2 := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns2, InterfaceName: "eth0"})
	a1, a2 := addrOf(t, r1), addrOf(t, r2)
	for _, a := range []netip.Prefix{a1, a2} {
		if !subnet.Contains(a.Addr()) || a.Bits() != 24 {
			t.Errorf("address %s is not in %s", a, subnet)
		}
	}
	if a1 == a2 {
		t.Fatalf("both containers have %s", a1)
	}
	if got := addrsOf(t, ns1, "eth0"); !strings.Contains(strings.Join(got, " "), a1.String()) {
		t.Errorf("eth0 in the container has %v, not %s", got, a1)
	}
	if mac := r1.Interfaces[0].GetMacAddress(); mac == "" || link(t, ns1, "eth0").HardwareAddr.String() != mac {
		t.Errorf("Connect's MAC %q is not eth0's", mac)
	}
	wantRoute := &networkv1.Route{Destination: "0.0.0.0/0", Gateway: subnet.Addr().Next().String(), Interface: "eth0"}
	if len(r1.Routes) != 1 || !proto.Equal(r1.Routes[0], wantRoute) {
		t.Errorf("routes %v, want %v", r1.Routes, wantRoute)
	}
	// Where the bridge is.
	bridge := "cni-" + netID[:11]
	if link(t, e.netns, bridge) == nil {
		t.Errorf("no bridge %s in the detached namespace", bridge)
	}
	if link(t, "", bridge) != nil {
		t.Errorf("bridge %s in the plugin's own namespace", bridge)
	}
	reach(t, ns1, ns2, a2.Addr())
	reach(t, ns2, ns1, a1.Addr())
	// The containers reach the gateway, the detached namespace.
	reach(t, ns1, e.netns, subnet.Addr().Next())

	// NAT by the bridge plugin's ipMasq, if iptables works here.
	if out, err := iptablesIn(e.netns); err != nil {
		if strings.Contains(string(b), `"ipMasq": true`) {
			t.Errorf("ipMasq on, but iptables does not work in the namespace: %v: %s", err, out)
		}
	} else if !strings.Contains(string(b), `"ipMasq": true`) {
		t.Errorf("iptables works in the namespace, yet the generated list has no ipMasq:\n%s", out)
	} else if !strings.Contains(out, subnet.Addr().Next().Next().String()) && !strings.Contains(out, a1.Addr().String()) {
		t.Errorf("no masquerading rule for %s:\n%s", a1, out)
	}

	if err := e.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: "nope", NetnsPath: ns1}); err != nil {
		t.Errorf("Disconnect of an unknown endpoint: %v", err)
	}
}

// iptablesIn lists the NAT rules of the namespace at path.
func iptablesIn(path string) (string, error) {
	var out []byte
	err := networktest.Do(path, func() error {
		var err error
		out, err = exec.Command("iptables", "-w", "5", "-t", "nat", "-S").CombinedOutput()
		return err
	})
	return string(out), err
}

var _ = errors.Is
