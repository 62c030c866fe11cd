package main

import (
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	current "github.com/containernetworking/cni/pkg/types/100"
	"google.golang.org/protobuf/proto"

	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	n, err := types.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return *n
}

func TestToResponse(t *testing.T) {
	ip := func(s string) net.IPNet { return mustCIDR(t, s) }
	gw := func(s string) []byte { return ip(s + "/32").IP }
	res := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{
			{Name: "cni0", Mac: "aa:aa:aa:aa:aa:aa"},
			{Name: "veth1234", Mac: "bb:bb:bb:bb:bb:bb"},
			{Name: "eth0", Mac: "cc:cc:cc:cc:cc:cc", Sandbox: "/run/netns/x"},
		},
		IPs: []*current.IPConfig{
			{Interface: current.Int(2), Address: ip("10.1.0.5/24"), Gateway: gw("10.1.0.1")},
			{Interface: current.Int(0), Address: ip("10.1.0.1/24")},
			{Interface: current.Int(2), Address: ip("fd00::5/64"), Gateway: ip("fd00::1/128").IP},
		},
		Routes: []*types.Route{
			{Dst: ip("0.0.0.0/0")},
			{Dst: ip("10.2.0.0/16"), GW: gw("10.1.0.254")},
			{Dst: ip("::/0")},
		},
		DNS: types.DNS{Nameservers: []string{"10.1.0.1"}, Domain: "example.org", Options: []string{"ndots:2"}},
	}
	want := &networkv1.ConnectResponse{
		Interfaces: []*networkv1.Interface{{Name: "eth0", MacAddress: "cc:cc:cc:cc:cc:cc", Addresses: []string{"10.1.0.5/24", "fd00::5/64"}}},
		Routes: []*networkv1.Route{
			{Destination: "0.0.0.0/0", Gateway: "10.1.0.1", Interface: "eth0"},
			{Destination: "10.2.0.0/16", Gateway: "10.1.0.254", Interface: "eth0"},
			{Destination: "::/0", Gateway: "fd00::1", Interface: "eth0"},
		},
		DnsServers: []string{"10.1.0.1"}, DnsSearch: []string{"example.org"}, DnsOptions: []string{"ndots:2"},
	}
	got, err := toResponse(res, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("toResponse:\n got %v\nwant %v", got, want)
	}

	// An older result, from a list of cniVersion 0.4.0.
	old, err := res.GetAsVersion("0.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := old.(*types040.Result); !ok {
		t.Fatalf("GetAsVersion(0.4.0) = %T", old)
	}
	if got, err := toResponse(old, "eth0"); err != nil || !proto.Equal(got, want) {
		t.Errorf("toResponse of a 0.4.0 result:\n got %v, %v\nwant %v", got, err, want)
	}

	// No interfaces (an IPAM-only chain): the addresses are the asked one's.
	bare := &current.Result{CNIVersion: "1.0.0", IPs: []*current.IPConfig{{Address: ip("10.3.0.7/24")}}}
	got, err = toResponse(bare, "eth3")
	if err != nil {
		t.Fatal(err)
	}
	if want := []*networkv1.Interface{{Name: "eth3", Addresses: []string{"10.3.0.7/24"}}}; len(got.Interfaces) != 1 || !proto.Equal(got.Interfaces[0], want[0]) {
		t.Errorf("toResponse without interfaces: %v, want %v", got.Interfaces, want)
	}
}

func TestGenerateRanges(t *testing.T) {
	for _, c := range []struct {
		ipam       ipamConfig
		start, end string
	}{
		{ipamConfig{Subnet: "10.0.0.0/16", Gateway: "10.0.0.1", IPRange: "10.0.0.0/24"}, "10.0.0.1", "10.0.0.255"},
		{ipamConfig{Subnet: "10.0.0.0/16", Gateway: "10.0.0.1", IPRange: "10.0.255.0/24"}, "10.0.255.0", "10.0.255.254"},
		{ipamConfig{Subnet: "fd00::/64", Gateway: "fd00::1", IPRange: "fd00::/120"}, "fd00::1", "fd00::ff"},
	} {
		b, err := generate(genOptions{name: "n", bridge: "b", ipam: []ipamConfig{c.ipam}})
		if err != nil {
			t.Fatal(err)
		}
		list, err := normalize(mustList(t, b), "gen", "")
		if err != nil {
			t.Fatal(err)
		}
		s := string(list.Plugins[0].Bytes)
		for _, w := range []string{`"rangeStart":"` + c.start + `"`, `"rangeEnd":"` + c.end + `"`} {
			if !strings.Contains(s, w) {
				t.Errorf("%v: %s has no %s", c.ipam, s, w)
			}
		}
	}
}

func mustList(t *testing.T, b []byte) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
