package bridge

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/moss-containers/moss/plugins"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// Address plan. The default network is Podman's and Docker's rootless
// choice; user networks take /24s from the pool after it, like Podman's
// default_subnet_pools.
var (
	defaultSubnet  = netip.MustParsePrefix("10.88.0.0/16")
	defaultGateway = netip.MustParseAddr("10.88.0.1")
	poolFirst      = netip.MustParseAddr("10.89.0.0")
	poolLast       = netip.MustParseAddr("10.255.255.0")
	poolBits       = 24
)

// ipam is a network's addressing, parsed.
type ipam struct {
	Subnet  netip.Prefix
	Gateway netip.Addr
	Range   netip.Prefix // where dynamic addresses come from; the subnet if not given
}

func (a ipam) proto() *networkv1.IPAMConfig {
	c := &networkv1.IPAMConfig{Subnet: a.Subnet.String(), Gateway: a.Gateway.String()}
	if a.Range != a.Subnet {
		c.IpRange = a.Range.String()
	}
	return c
}

// prefixLen is the bridge address's prefix length (the subnet's).
func (a ipam) prefix(addr netip.Addr) netip.Prefix {
	return netip.PrefixFrom(addr, a.Subnet.Bits())
}

// parseIPAM checks the user's IPAM configuration. A subnet with host bits
// set is taken as its network (Docker does the same); the gateway defaults
// to the subnet's first address. A subnet must leave room for the
// network, gateway, broadcast and one container address (/30 at most).
func parseIPAM(c *networkv1.IPAMConfig) (ipam, error) {
	var a ipam
	p, err := netip.ParsePrefix(c.GetSubnet())
	if err != nil {
		return a, plugins.Invalid("invalid subnet %q: not a CIDR", c.GetSubnet())
	}
	if !p.Addr().Is4() {
		return a, plugins.Unsupported("subnet %q: the bridge driver has no IPv6", c.GetSubnet())
	}
	if p.Bits() > 30 {
		return a, plugins.Invalid("subnet %q is too small: a bridge network needs at least a /30", c.GetSubnet())
	}
	a.Subnet = p.Masked()
	a.Range = a.Subnet
	if s := c.GetIpRange(); s != "" {
		r, err := netip.ParsePrefix(s)
		if err != nil || !r.Addr().Is4() {
			return a, plugins.Invalid("invalid ip-range %q: not an IPv4 CIDR", s)
		}
		r = r.Masked()
		if r.Bits() < a.Subnet.Bits() || !a.Subnet.Contains(r.Addr()) {
			return a, plugins.Invalid("ip-range %s is not within subnet %s", r, a.Subnet)
		}
		a.Range = r
	}
	if s := c.GetGateway(); s != "" {
		g, err := netip.ParseAddr(s)
		if err != nil || !g.Is4() {
			return a, plugins.Invalid("invalid gateway %q: not an IPv4 address", s)
		}
		if !a.Subnet.Contains(g) {
			return a, plugins.Invalid("gateway %s is not within subnet %s", g, a.Subnet)
		}
		if g == a.Subnet.Addr() || g == broadcast(a.Subnet) {
			return a, plugins.Invalid("gateway %s is the network or broadcast address of subnet %s", g, a.Subnet)
		}
		a.Gateway = g
	} else {
		a.Gateway = a.Subnet.Addr().Next()
	}
	return a, nil
}

// u32 and fromU32 convert IPv4 addresses for arithmetic.
func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func broadcast(p netip.Prefix) netip.Addr {
	return fromU32(u32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}

// overlapping returns the first of taken that overlaps p.
func overlapping(p netip.Prefix, taken []netip.Prefix) (netip.Prefix, bool) {
	for _, t := range taken {
		if p.Overlaps(t) {
			return t, true
		}
	}
	return netip.Prefix{}, false
}

// freeSubnet returns the first /24 of the pool that overlaps none of taken.
func freeSubnet(taken []netip.Prefix) (netip.Prefix, bool) {
	step := uint32(1) << (32 - poolBits)
	for v := u32(poolFirst); v <= u32(poolLast); v += step {
		p := netip.PrefixFrom(fromU32(v), poolBits)
		if t, ok := overlapping(p, taken); ok {
			// Jump past what overlaps (a /16 user network is 256 steps).
			if end := u32(broadcast(t)); end > v {
				v = end &^ (step - 1)
			}
			continue
		}
		return p, true
	}
	return netip.Prefix{}, false
}

// allocate returns a free address of the network: the next free one of
// its range after last (wrapping around), so that a released address is
// not handed out again at once — other containers may still have it in
// their ARP caches, with the old MAC (Docker allocates the same way). The
// network and broadcast addresses of the subnet and the gateway are never
// handed out.
func (a ipam) allocate(taken func(netip.Addr) bool, last netip.Addr) (netip.Addr, bool) {
	first, end := u32(a.Range.Addr()), u32(broadcast(a.Range))
	size := end - first + 1
	start := first
	if last.IsValid() && a.Range.Contains(last) {
		start = u32(last) + 1
	}
	for i := uint32(0); i < size; i++ {
		v := start + i
		if v > end || v < first {
			v = first + (v-first)%size
		}
		addr := fromU32(v)
		if a.reserved(addr) || taken(addr) {
			continue
		}
		return addr, true
	}
	return netip.Addr{}, false
}

// reserved reports the addresses no container may have.
func (a ipam) reserved(addr netip.Addr) bool {
	return addr == a.Subnet.Addr() || addr == broadcast(a.Subnet) || addr == a.Gateway
}

// checkStatic checks a requested address. Like Docker, a static address
// need only be within the subnet: the ip-range bounds dynamic addresses,
// which leaves the rest of the subnet for static ones.
func (a ipam) checkStatic(s string, taken func(netip.Addr) bool) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is4() {
		return addr, plugins.Invalid("invalid IPv4 address %q", s)
	}
	if !a.Subnet.Contains(addr) {
		return addr, plugins.Invalid("address %s is not within subnet %s", addr, a.Subnet)
	}
	switch {
	case addr == a.Gateway:
		return addr, plugins.Exists("address %s is in use: it is the network's gateway", addr)
	case addr == a.Subnet.Addr() || addr == broadcast(a.Subnet):
		return addr, plugins.Invalid("address %s is the network or broadcast address of subnet %s", addr, a.Subnet)
	case taken(addr):
		return addr, plugins.Exists("address %s is already in use", addr)
	}
	return addr, nil
}

func (a ipam) String() string {
	s := fmt.Sprintf("subnet %s gateway %s", a.Subnet, a.Gateway)
	if a.Range != a.Subnet {
		s += " ip-range " + a.Range.String()
	}
	return s
}
