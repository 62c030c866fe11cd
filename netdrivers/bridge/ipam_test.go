package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/moss-containers/moss/plugins"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

func TestParseIPAM(t *testing.T) {
	for _, c := range []struct {
		in   *networkv1.IPAMConfig
		want string // ipam.String(), or "" for an error of kind
		kind error
	}{
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/16"}, want: "subnet 10.1.0.0/16 gateway 10.1.0.1"},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.2.3/16"}, want: "subnet 10.1.0.0/16 gateway 10.1.0.1"},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/16", Gateway: "10.1.255.254", IpRange: "10.1.5.0/24"}, want: "subnet 10.1.0.0/16 gateway 10.1.255.254 ip-range 10.1.5.0/24"},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/30"}, want: "subnet 10.1.0.0/30 gateway 10.1.0.1"},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/31"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.300/24"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "fd00::/64"}, kind: plugins.ErrUnsupported},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/24", Gateway: "10.2.0.1"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/24", Gateway: "10.1.0.0"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/24", Gateway: "10.1.0.255"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/24", Gateway: "x"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/24", IpRange: "10.1.0.0/16"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/24", IpRange: "10.2.0.0/28"}, kind: plugins.ErrInvalid},
		{in: &networkv1.IPAMConfig{Subnet: "10.1.0.0/24", IpRange: "nope"}, kind: plugins.ErrInvalid},
	} {
		got, err := parseIPAM(c.in)
		switch {
		case c.want != "" && (err != nil || got.String() != c.want):
			t.Errorf("parseIPAM(%v) = %v, %v; want %s", c.in, got, err, c.want)
		case c.want == "" && !errors.Is(err, c.kind):
			t.Errorf("parseIPAM(%v) = %v, %v; want an error of kind %v", c.in, got, err, c.kind)
		}
	}
}

func TestFreeSubnet(t *testing.T) {
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	for _, c := range []struct {
		taken []netip.Prefix
		want  string
	}{
		{nil, "10.89.0.0/24"},
		{[]netip.Prefix{p("10.89.0.0/24")}, "10.89.1.0/24"},
		{[]netip.Prefix{p("10.89.0.0/24"), p("10.89.2.0/24")}, "10.89.1.0/24"},
		{[]netip.Prefix{p("10.89.0.0/16")}, "10.90.0.0/24"},
		{[]netip.Prefix{p("10.89.0.128/25")}, "10.89.1.0/24"},
		{[]netip.Prefix{p("10.0.0.0/8")}, ""},
	} {
		got, ok := freeSubnet(c.taken)
		if (c.want == "" && ok) || (c.want != "" && got.String() != c.want) {
			t.Errorf("freeSubnet(%v) = %v, %v; want %q", c.taken, got, ok, c.want)
		}
	}
}

func TestAllocate(t *testing.T) {
	a, err := parseIPAM(&networkv1.IPAMConfig{Subnet: "10.1.0.0/29"})
	if err != nil {
		t.Fatal(err)
	}
	used := map[netip.Addr]bool{}
	var last netip.Addr
	var got []string
	for {
		addr, ok := a.allocate(in(used), last)
		if !ok {
			break
		}
		used[addr], last = true, addr
		got = append(got, addr.String())
	}
	// .0 network, .1 gateway, .7 broadcast.
	if want := "[10.1.0.2 10.1.0.3 10.1.0.4 10.1.0.5 10.1.0.6]"; fmtList(got) != want {
		t.Fatalf("allocations %v, want %s", got, want)
	}
	// A released address comes back only after the others.
	delete(used, netip.MustParseAddr("10.1.0.3"))
	delete(used, netip.MustParseAddr("10.1.0.5"))
	if addr, _ := a.allocate(in(used), last); addr.String() != "10.1.0.3" {
		t.Errorf("after wrapping: %s, want 10.1.0.3", addr)
	}
	if addr, _ := a.allocate(in(used), netip.MustParseAddr("10.1.0.3")); addr.String() != "10.1.0.5" {
		t.Errorf("next: %s, want 10.1.0.5", addr)
	}

	r, err := parseIPAM(&networkv1.IPAMConfig{Subnet: "10.2.0.0/24", IpRange: "10.2.0.0/30", Gateway: "10.2.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	used = map[netip.Addr]bool{}
	first, _ := r.allocate(in(used), netip.Addr{})
	used[first] = true
	second, _ := r.allocate(in(used), first)
	used[second] = true
	if first.String() != "10.2.0.1" || second.String() != "10.2.0.3" {
		t.Errorf("range allocations %s %s, want 10.2.0.1 10.2.0.3", first, second)
	}
	if addr, ok := r.allocate(in(used), second); ok {
		t.Errorf("full range gave %s", addr)
	}
}

func TestCheckStatic(t *testing.T) {
	a, err := parseIPAM(&networkv1.IPAMConfig{Subnet: "10.3.0.0/24", IpRange: "10.3.0.128/25"})
	if err != nil {
		t.Fatal(err)
	}
	used := map[netip.Addr]bool{netip.MustParseAddr("10.3.0.9"): true}
	for s, kind := range map[string]error{
		"10.3.0.5":   nil, // outside the range, inside the subnet: Docker allows it
		"10.3.0.200": nil,
		"10.3.0.9":   plugins.ErrExists,
		"10.3.0.1":   plugins.ErrExists, // the gateway
		"10.3.0.0":   plugins.ErrInvalid,
		"10.3.0.255": plugins.ErrInvalid,
		"10.4.0.5":   plugins.ErrInvalid,
		"fd00::1":    plugins.ErrInvalid,
		"x":          plugins.ErrInvalid,
	} {
		_, err := a.checkStatic(s, in(used))
		if (kind == nil && err != nil) || (kind != nil && !errors.Is(err, kind)) {
			t.Errorf("checkStatic(%s) = %v, want kind %v", s, err, kind)
		}
	}
}

func TestHostVethName(t *testing.T) {
	n := hostVethName("0123456789abcdef")
	if len(n) != 15 || n[:len(vethPrefix)] != vethPrefix || n != hostVethName("0123456789abcdef") || n == hostVethName("other") {
		t.Errorf("hostVethName = %q", n)
	}
}

func TestRandomMAC(t *testing.T) {
	m := randomMAC()
	if len(m) != 6 || m[0]&1 != 0 || m[0]&2 == 0 {
		t.Errorf("randomMAC = %s: want unicast, locally administered", m)
	}
}

func TestReverseName(t *testing.T) {
	if ip, ok := reverseName("4.3.2.10.in-addr.arpa"); !ok || ip.String() != "10.2.3.4" {
		t.Errorf("reverseName = %v %v", ip, ok)
	}
	if _, ok := reverseName("3.2.10.in-addr.arpa"); ok {
		t.Error("a partial reverse name parsed")
	}
}

func TestReadResolvConf(t *testing.T) {
	p := t.TempDir() + "/resolv.conf"
	if err := writeFile(p, "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver ::1\nnameserver bogus\noptions edns0\n"); err != nil {
		t.Fatal(err)
	}
	got, err := readResolvConf(p)
	if err != nil || fmtList(got) != "[127.0.0.53:53 [::1]:53]" {
		t.Errorf("readResolvConf = %v, %v", got, err)
	}
	u := &upstream{path: t.TempDir() + "/missing"}
	if got := u.servers(); fmtList(got) != "[127.0.0.1:53]" {
		t.Errorf("without resolv.conf: %v", got)
	}
}

func fmtList(l []string) string { return fmt.Sprint(l) }

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }

func in(m map[netip.Addr]bool) func(netip.Addr) bool { return func(a netip.Addr) bool { return m[a] } }
