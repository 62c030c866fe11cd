package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vishvananda/netlink"
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

// randomHex is a Docker-style ID: 64 hex digits.
func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bridgeOf is the bridge of the generated network id.
func bridgeOf(t *testing.T, e *env, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "networks", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil || !strings.HasPrefix(r.Bridge, "cni-") || len(r.Bridge) != 15 {
		t.Fatalf("record of network %s: %s, %v", id, b, err)
	}
	return r.Bridge
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
	otherID := randomHex()
	other := e.create(t, &networkv1.CreateNetworkRequest{NetworkId: otherID, Name: "gen2"})
	if o := netip.MustParsePrefix(other.Ipam[0].Subnet); o.Overlaps(subnet) {
		t.Errorf("second network got %s, overlapping %s", o, subnet)
	}
	if bridgeOf(t, e, netID) == bridgeOf(t, e, otherID) {
		t.Errorf("both networks have bridge %s", bridgeOf(t, e, netID))
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
	bridge := bridgeOf(t, e, netID)
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

// writeConf writes a file of the conf dir.
func (e *env) writeConf(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.conf, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const mynet = `{
  "cniVersion": "1.0.0",
  "name": "mynet",
  "plugins": [
    {"type": "bridge", "bridge": "mynet0", "isGateway": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.91.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}`

// setDown sets the interface name down in the namespace at path.
func setDown(t *testing.T, path, name string) {
	t.Helper()
	if err := networktest.Do(path, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestConflistByName: -o conflist=NAME takes the list of that name from
// conf_dir (passing over a broken file), with loopback in the chain;
// host-local keeps its leases in the state directory (rootless).
func TestConflistByName(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	e.writeConf(t, "00-broken.conflist", `{"name": `)
	e.writeConf(t, "10-mynet.conflist", mynet)
	netID := randomHex()
	req := &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "mynet", Options: map[string]string{"conflist": "mynet"}}
	created := e.create(t, req)
	want := []*networkv1.IPAMConfig{{Subnet: "10.91.0.0/24", Gateway: "10.91.0.1"}}
	if len(created.Ipam) != 1 || !proto.Equal(created.Ipam[0], want[0]) {
		t.Errorf("CreateNetwork answered %v, want the list's %v", created.Ipam, want)
	}
	// After a restart the agent passes the addressing it was answered.
	e.restart(t)
	req.Ipam = created.Ipam
	if again := e.create(t, req); !proto.Equal(again, created) {
		t.Errorf("CreateNetwork again: %v, first %v", again, created)
	}
	_, err := e.d.CreateNetwork(ctx(t), &networkv1.CreateNetworkRequest{NetworkId: randomHex(), Name: "x",
		Options: map[string]string{"conflist": "mynet"}, Ipam: []*networkv1.IPAMConfig{{Subnet: "10.92.0.0/24"}}})
	if !errors.Is(err, plugins.ErrInvalid) || !strings.Contains(err.Error(), "10-mynet.conflist") {
		t.Errorf("CreateNetwork of a conflist with another subnet: %v, want an Invalid error naming the file", err)
	}

	_, err = e.d.CreateNetwork(ctx(t), &networkv1.CreateNetworkRequest{NetworkId: randomHex(), Name: "twice", Options: map[string]string{"conflist": "mynet"}})
	if !errors.Is(err, plugins.ErrExists) {
		t.Errorf("a second network of the same list: %v, want an Exists error", err)
	}
	_, err = e.d.CreateNetwork(ctx(t), &networkv1.CreateNetworkRequest{NetworkId: randomHex(), Name: "over", Ipam: []*networkv1.IPAMConfig{{Subnet: "10.91.0.0/16"}}})
	if !errors.Is(err, plugins.ErrExists) {
		t.Errorf("a generated network over the list's subnet: %v, want an Exists error", err)
	}

	ns := networktest.NewNetns(t)
	setDown(t, ns, "lo")
	ep := randomHex()
	resp := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns, InterfaceName: "eth0"})
	a := addrOf(t, resp)
	if !netip.MustParsePrefix("10.91.0.0/24").Contains(a.Addr()) {
		t.Errorf("address %s is not the list's", a)
	}
	if lo := link(t, ns, "lo"); lo == nil || lo.Flags&net.FlagUp == 0 {
		t.Error("the loopback plugin did not set lo up")
	}
	if link(t, e.netns, "mynet0") == nil {
		t.Error("no bridge mynet0 in the detached namespace")
	}
	leases, _ := filepath.Glob(filepath.Join(e.cfg.StateDir, "ipam", "mynet", "10.91.0.*"))
	if len(leases) != 1 {
		t.Errorf("host-local leases in the state directory: %v, want one", leases)
	}
	if again := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns, InterfaceName: "eth0"}); !proto.Equal(again, resp) {
		t.Errorf("Connect again: %v, first %v", again, resp)
	}
	// The list takes no static addresses.
	_, err = e.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomHex(), NetnsPath: networktest.NewNetns(t), Ipv4Address: "10.91.0.9"})
	if !errors.Is(err, plugins.ErrUnsupported) {
		t.Errorf("static address on a list without the ips capability: %v, want Unsupported", err)
	}
	// Disconnect after a restart, from libcni's cache.
	e.restart(t)
	if err := e.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns}); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if link(t, ns, "eth0") != nil {
		t.Error("eth0 still in the container after Disconnect")
	}
	if leases, _ := filepath.Glob(filepath.Join(e.cfg.StateDir, "ipam", "mynet", "10.91.0.*")); len(leases) != 0 {
		t.Errorf("leases left after Disconnect: %v", leases)
	}
	if err := e.d.DeleteNetwork(ctx(t), &networkv1.DeleteNetworkRequest{NetworkId: netID}); err != nil {
		t.Fatal(err)
	}
	if link(t, e.netns, "mynet0") == nil {
		t.Error("DeleteNetwork removed mynet0, the conflist's bridge")
	}
}

// TestConflistFile: -o conflist_file=PATH, a single-plugin .conf too.
func TestConflistFile(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "one.conf")
	if err := os.WriteFile(file, []byte(`{"cniVersion": "0.4.0", "name": "one", "type": "bridge", "bridge": "one0", "isGateway": true,
	  "ipam": {"type": "host-local", "subnet": "10.93.0.0/24", "gateway": "10.93.0.254"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	netID := randomHex()
	created := e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "one", Options: map[string]string{"conflist_file": file}})
	if want := (&networkv1.IPAMConfig{Subnet: "10.93.0.0/24", Gateway: "10.93.0.254"}); len(created.Ipam) != 1 || !proto.Equal(created.Ipam[0], want) {
		t.Errorf("CreateNetwork answered %v, want %v", created.Ipam, want)
	}
	ns1, ns2 := networktest.NewNetns(t), networktest.NewNetns(t)
	r1 := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns1, InterfaceName: "eth0"})
	r2 := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns2, InterfaceName: "eth0"})
	reach(t, ns1, ns2, addrOf(t, r2).Addr())
	if len(r1.Routes) != 0 {
		t.Errorf("routes %v from a list without any", r1.Routes)
	}
}

// TestErrors: bad options and lists are Invalid errors that name the
// file and the problem; lists that are not there NotFound.
func TestErrors(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	e.writeConf(t, "00-broken.conflist", `{"name": `)
	bad := e.writeConf(t, "bad.json.txt", `{"cniVersion": "1.0.0", "name": "bad", "plugins": [`)
	noPlugin := e.writeConf(t, "nosuch.conflist", `{"cniVersion": "1.0.0", "name": "nosuch", "plugins": [{"type": "nosuchplugin"}]}`)
	e.writeConf(t, "noipam.conflist", `{"cniVersion": "1.0.0", "name": "noipam", "plugins": [{"type": "bridge", "ipam": {"type": "nosuchipam"}}]}`)
	e.writeConf(t, "newer.conflist", `{"cniVersion": "0.0.7", "name": "newer", "plugins": [{"type": "bridge"}]}`)
	e.writeConf(t, "badname.conflist", `{"cniVersion": "1.0.0", "name": "bad/name", "plugins": [{"type": "bridge"}]}`)
	for _, c := range []struct {
		opts     map[string]string
		internal bool
		kind     error
		says     []string
	}{
		{opts: map[string]string{"conflist": "missing"}, kind: plugins.ErrNotFound, says: []string{`"missing"`, e.conf, "00-broken.conflist"}},
		{opts: map[string]string{"conflist_file": "/nonexistent/x.conflist"}, kind: plugins.ErrNotFound, says: []string{"/nonexistent/x.conflist"}},
		{opts: map[string]string{"conflist_file": "x.conflist"}, kind: plugins.ErrInvalid, says: []string{"absolute"}},
		{opts: map[string]string{"conflist_file": bad}, kind: plugins.ErrInvalid, says: []string{bad}},
		{opts: map[string]string{"conflist": "nosuch"}, kind: plugins.ErrInvalid, says: []string{noPlugin, "nosuchplugin"}},
		{opts: map[string]string{"conflist": "noipam"}, kind: plugins.ErrInvalid, says: []string{"noipam.conflist", "nosuchipam"}},
		{opts: map[string]string{"conflist": "newer"}, kind: plugins.ErrInvalid, says: []string{"newer.conflist", "0.0.7"}},
		{opts: map[string]string{"conflist": "bad/name"}, kind: plugins.ErrInvalid, says: []string{"badname.conflist", "bad/name"}},
		{opts: map[string]string{"conflist": "mynet", "conflist_file": bad}, kind: plugins.ErrInvalid, says: []string{"not both"}},
		{opts: map[string]string{"conflist": "nosuch", "mtu": "1400"}, kind: plugins.ErrInvalid, says: []string{`"mtu"`}},
		{opts: map[string]string{"conflist": "nosuch"}, internal: true, kind: plugins.ErrInvalid, says: []string{"internal"}},
		{opts: map[string]string{"colour": "blue"}, kind: plugins.ErrInvalid, says: []string{`"colour"`}},
		{opts: map[string]string{"mtu": "big"}, kind: plugins.ErrInvalid, says: []string{"mtu"}},
		{opts: map[string]string{"ipmasq": "maybe"}, kind: plugins.ErrInvalid, says: []string{"ipmasq"}},
		{opts: map[string]string{"bridge": "a-name-much-too-long"}, kind: plugins.ErrInvalid, says: []string{"bridge"}},
	} {
		_, err := e.d.CreateNetwork(ctx(t), &networkv1.CreateNetworkRequest{NetworkId: randomHex(), Name: "bad", Options: c.opts, Internal: c.internal})
		t.Logf("%v: %v", c.opts, err)
		if !errors.Is(err, c.kind) {
			t.Errorf("CreateNetwork with %v: %v, want kind %v", c.opts, err, c.kind)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("CreateNetwork with %v: %q does not say %q", c.opts, err, s)
			}
		}
	}
	// Nothing of the refused networks stays.
	if recs, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, "networks")); len(recs) != 0 {
		t.Errorf("refused networks left records: %v", recs)
	}
	if lists, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, "net.d")); len(lists) != 0 {
		t.Errorf("refused networks left lists: %v", lists)
	}
	netID := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "ok"})
	_, err := e.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomHex(), NetnsPath: t.TempDir()})
	if !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Connect to a directory as netns: %v, want Invalid", err)
	}
	_, err = e.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomHex(), NetnsPath: networktest.NewNetns(t), MacAddress: "zz"})
	if !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Connect with MAC zz: %v, want Invalid", err)
	}
	for _, opts := range []map[string]string{{"colour": "blue"}, {"conf_dir": "relative/dir"}, {"bin_dir": ""}} {
		d := plugins.TestNetworkClient(t, newDriver(testLogger(t)))
		err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: t.TempDir(), NetnsPath: e.netns, Options: opts})
		if !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("Configure with %v: %v, want Invalid", opts, err)
		}
	}
	d := plugins.TestNetworkClient(t, newDriver(testLogger(t)))
	if err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: t.TempDir(), NetnsPath: t.TempDir()}); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Configure with a directory as netns: %v, want Invalid", err)
	}
}

// TestOptions: bridge name, MTU, MAC address, ipmasq=false and internal
// networks of generated lists.
func TestOptions(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	netID := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "opts", Internal: true,
		Ipam:    []*networkv1.IPAMConfig{{Subnet: "10.94.0.0/16", Gateway: "10.94.0.254", IpRange: "10.94.7.0/24"}},
		Options: map[string]string{"com.docker.network.bridge.name": "mybr0", "mtu": "1400"}})
	ns := networktest.NewNetns(t)
	resp := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns, InterfaceName: "eth1", MacAddress: "02:42:0a:5e:07:09"})
	if a := addrOf(t, resp); !netip.MustParsePrefix("10.94.7.0/24").Contains(a.Addr()) || a.Bits() != 16 {
		t.Errorf("address %s is not in the ip-range 10.94.7.0/24 of 10.94.0.0/16", a)
	}
	eth1 := link(t, ns, "eth1")
	if eth1 == nil || eth1.HardwareAddr.String() != "02:42:0a:5e:07:09" || eth1.MTU != 1400 {
		t.Errorf("eth1 = %+v, want MAC 02:42:0a:5e:07:09 and MTU 1400", eth1)
	}
	if resp.Interfaces[0].GetMacAddress() != "02:42:0a:5e:07:09" {
		t.Errorf("Connect answered MAC %q", resp.Interfaces[0].GetMacAddress())
	}
	if br := link(t, e.netns, "mybr0"); br == nil {
		t.Error("no bridge mybr0")
	} else if got := addrsOf(t, e.netns, "mybr0"); !slices.Contains(got, "10.94.0.254/16") {
		t.Errorf("bridge mybr0 has %v, want the gateway 10.94.0.254/16", got)
	}
	if len(resp.Routes) != 0 {
		t.Errorf("internal network: routes %v", resp.Routes)
	}
	if out, err := iptablesIn(e.netns); err == nil && strings.Contains(out, "10.94.") {
		t.Errorf("internal network masqueraded:\n%s", out)
	}
	n2 := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: n2, Name: "nomasq", Options: map[string]string{"ipmasq": "false"}})
	r2 := e.connect(t, &networkv1.ConnectRequest{NetworkId: n2, NetnsPath: networktest.NewNetns(t)})
	if len(r2.Routes) != 1 || r2.Routes[0].Destination != "0.0.0.0/0" {
		t.Errorf("routes %v, want a default route", r2.Routes)
	}
	if out, err := iptablesIn(e.netns); err == nil && strings.Contains(out, addrOf(t, r2).Addr().String()) {
		t.Errorf("ipmasq=false masqueraded:\n%s", out)
	}
}

// TestGoneAndMoved: Disconnect when the container's namespace is gone
// releases the address; Connect of a connected endpoint into another
// namespace (the container started again) moves it.
func TestGoneAndMoved(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	netID := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "gone", Ipam: []*networkv1.IPAMConfig{{Subnet: "10.95.0.0/24"}}})
	ns, remove := networktest.NewNetnsRemovable(t)
	ep := randomHex()
	e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns, Ipv4Address: "10.95.0.5"})
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns}); err != nil {
		t.Fatalf("Disconnect with the namespace gone: %v", err)
	}
	ns1, ns2 := networktest.NewNetns(t), networktest.NewNetns(t)
	ep = randomHex()
	first := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns1, Ipv4Address: "10.95.0.5"})
	moved := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns2})
	if link(t, ns1, "eth0") != nil {
		t.Error("eth0 left in the first namespace")
	}
	// Another endpoint with the interface name of the moved one.
	_, err := e.d.Connect(ctx(t), &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomHex(), NetnsPath: ns2, InterfaceName: "eth0"})
	if !errors.Is(err, plugins.ErrExists) {
		t.Errorf("Connect with a taken interface name: %v, want an Exists error", err)
	}
	if link(t, ns2, "eth0") == nil {
		t.Error("a refused Connect removed the interface of another endpoint")
	}
	if link(t, ns2, "eth0") == nil {
		t.Error("no eth0 in the second namespace")
	}
	if proto.Equal(first, moved) && first.Interfaces[0].MacAddress != "" {
		t.Errorf("moved endpoint answered the old configuration %v", first)
	}
}

// TestConcurrentConnects: endpoints connected at once get distinct
// addresses and interfaces.
func TestConcurrentConnects(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	netID := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "many"})
	const n = 8
	type res struct {
		addr netip.Prefix
		err  error
	}
	nss := make([]string, n)
	reqs := make([]*networkv1.ConnectRequest, n)
	for i := range nss {
		nss[i] = networktest.NewNetns(t)
		reqs[i] = &networkv1.ConnectRequest{NetworkId: netID, EndpointId: randomHex(), NetnsPath: nss[i]}
	}
	out := make(chan res, n)
	for i := range n {
		go func() {
			resp, err := e.d.Connect(context.Background(), reqs[i])
			if err != nil {
				out <- res{err: err}
				return
			}
			p, err := netip.ParsePrefix(resp.GetInterfaces()[0].GetAddresses()[0])
			out <- res{p, err}
		}()
	}
	seen := map[netip.Prefix]bool{}
	for range n {
		r := <-out
		if r.err != nil {
			t.Fatalf("Connect: %v", r.err)
		}
		if seen[r.addr] {
			t.Errorf("address %s twice", r.addr)
		}
		seen[r.addr] = true
	}
	for _, ns := range nss {
		if link(t, ns, "eth0") == nil {
			t.Errorf("no eth0 in %s", ns)
		}
	}
}

// TestOwnNetns: without netns_path (Moss as real root) the plugins run in
// the plugin's own namespace.
func TestOwnNetns(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	d := plugins.TestNetworkClient(t, newDriver(testLogger(t)))
	state := t.TempDir()
	if err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	e := &env{d: d, cfg: &basev1.ConfigureRequest{StateDir: state}}
	netID := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "own"})
	bridge := bridgeOf(t, e, netID)
	ns1, ns2 := networktest.NewNetns(t), networktest.NewNetns(t)
	e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns1})
	r2 := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns2})
	if link(t, "", bridge) == nil {
		t.Error("no bridge in the plugin's namespace")
	}
	reach(t, ns1, ns2, addrOf(t, r2).Addr())
	if err := d.DeleteNetwork(ctx(t), &networkv1.DeleteNetworkRequest{NetworkId: netID}); err != nil {
		t.Fatal(err)
	}
	if link(t, "", bridge) != nil {
		t.Error("DeleteNetwork left the bridge")
	}
}

// TestDeleteNetwork: a generated network's bridge, list and leases go;
// its subnet can be had again.
func TestDeleteNetwork(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	netID := randomHex()
	req := &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "del", Ipam: []*networkv1.IPAMConfig{{Subnet: "10.96.0.0/24"}}}
	e.create(t, req)
	bridge := bridgeOf(t, e, netID)
	ns := networktest.NewNetns(t)
	ep := randomHex()
	e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns})
	if err := e.d.Disconnect(ctx(t), &networkv1.DisconnectRequest{NetworkId: netID, EndpointId: ep, NetnsPath: ns}); err != nil {
		t.Fatal(err)
	}
	if err := e.d.DeleteNetwork(ctx(t), &networkv1.DeleteNetworkRequest{NetworkId: netID}); err != nil {
		t.Fatal(err)
	}
	if link(t, e.netns, bridge) != nil {
		t.Error("DeleteNetwork left the bridge")
	}
	for _, p := range []string{"net.d/" + netID + ".conflist", "networks/" + netID + ".json", "ipam/moss-" + netID} {
		if _, err := os.Stat(filepath.Join(e.cfg.StateDir, p)); err == nil {
			t.Errorf("DeleteNetwork left %s", p)
		}
	}
	req.NetworkId = randomHex()
	e.create(t, req)
	e.connect(t, &networkv1.ConnectRequest{NetworkId: req.NetworkId, NetnsPath: networktest.NewNetns(t)})
}

// TestMasquerade: containers of a generated network reach beyond the
// detached namespace through NAT (the bridge plugin's ipMasq, iptables-nft
// in a rootless namespace): an "outside" namespace with no route back to
// the containers sees the detached namespace's address; with ipmasq=false
// it cannot answer.
func TestMasquerade(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	outside := networktest.NewNetns(t)
	f, err := os.Open(outside)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// detached 192.168.77.2 (uplink, default route) — outside 192.168.77.1
	if err := networktest.Do(e.netns, func() error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1"}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("up1")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsFd(peer, int(f.Fd())); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("192.168.77.2/24")
		if err := netlink.AddrAdd(veth, addr); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: veth.Attrs().Index, Gw: net.ParseIP("192.168.77.1")})
	}); err != nil {
		t.Fatalf("uplink of the detached namespace: %v", err)
	}
	if err := networktest.Do(outside, func() error {
		l, err := netlink.LinkByName("up1")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("192.168.77.1/24")
		if err := netlink.AddrAdd(l, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}); err != nil {
		t.Fatalf("outside: %v", err)
	}
	var ln net.Listener
	if err := networktest.Do(outside, func() error {
		ln, err = net.Listen("tcp", "192.168.77.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	dial := func(ns string, timeout time.Duration) error {
		return networktest.Do(ns, func() error {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), timeout)
			if err == nil {
				c.Close()
			}
			return err
		})
	}

	masq := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: masq, Name: "masq"})
	ns := networktest.NewNetns(t)
	e.connect(t, &networkv1.ConnectRequest{NetworkId: masq, NetnsPath: ns})
	if err := dial(ns, 5*time.Second); err != nil {
		t.Fatalf("container to the outside: %v", err)
	}
	if peer := <-peers; peer != "192.168.77.2" {
		t.Errorf("the outside saw %s, want the detached namespace's 192.168.77.2", peer)
	}

	plain := randomHex()
	e.create(t, &networkv1.CreateNetworkRequest{NetworkId: plain, Name: "plain", Options: map[string]string{"ipmasq": "false"}})
	ns2 := networktest.NewNetns(t)
	e.connect(t, &networkv1.ConnectRequest{NetworkId: plain, NetnsPath: ns2})
	if err := dial(ns2, time.Second); err == nil {
		t.Errorf("without ipmasq the outside answered a container (it saw %s)", <-peers)
	}
}

// TestIPv6: --ipv6 without a v6 subnet adds a free fd90:0:0:N::/64.
func TestIPv6(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	e := newEnv(t)
	netID := randomHex()
	created := e.create(t, &networkv1.CreateNetworkRequest{NetworkId: netID, Name: "six", Ipv6: true})
	if len(created.Ipam) != 2 || created.Ipam[1].Subnet != "fd90::/64" || created.Ipam[1].Gateway != "fd90::1" {
		t.Fatalf("CreateNetwork with IPv6 answered %v", created.Ipam)
	}
	ns1, ns2 := networktest.NewNetns(t), networktest.NewNetns(t)
	e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns1})
	r2 := e.connect(t, &networkv1.ConnectRequest{NetworkId: netID, NetnsPath: ns2, Ipv6Address: "fd90::42"})
	addrs := r2.Interfaces[0].GetAddresses()
	if len(addrs) != 2 || addrs[1] != "fd90::42/64" {
		t.Fatalf("addresses %v, want an IPv4 one and fd90::42/64", addrs)
	}
	var routes []string
	for _, r := range r2.Routes {
		routes = append(routes, r.Destination+" via "+r.Gateway)
	}
	if want := []string{"0.0.0.0/0 via " + created.Ipam[0].Gateway, "::/0 via fd90::1"}; !slices.Equal(routes, want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
	reach(t, ns1, ns2, netip.MustParseAddr("fd90::42"))
}
