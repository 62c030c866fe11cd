package bridge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/plugins"
)

// vethPrefix starts the name of every host end of a veth pair the driver
// makes; the rest is a hash of the endpoint ID, so that a Connect
// interrupted by a crash finds and replaces its own leftover.
const vethPrefix = "mossv"

func hostVethName(endpointID string) string {
	sum := sha256.Sum256([]byte(endpointID))
	return vethPrefix + hex.EncodeToString(sum[:])[:unix.IFNAMSIZ-1-len(vethPrefix)]
}

// randomMAC returns a random unicast, locally administered address.
func randomMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	_, _ = rand.Read(m)
	m[0] = m[0]&^0x01 | 0x02
	return m
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// ensureBridge makes n's bridge exist with its gateway address and up.
// An existing bridge is kept as it is, ports and all.
func ensureBridge(h *netlink.Handle, n *network) error {
	link, err := h.LinkByName(n.Bridge)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if err != nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.Bridge
		attrs.MTU = n.MTU
		// A fixed address: else the bridge takes its lowest port's, and
		// containers' ARP entries for the gateway go stale.
		attrs.HardwareAddr = randomMAC()
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := h.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if link, err = h.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	if link.Type() != "bridge" {
		return plugins.Exists("network device %s exists and is not a bridge (%s)", n.Bridge, link.Type())
	}
	n.bridgeIndex = link.Attrs().Index
	addr := &netlink.Addr{IPNet: ipNet(n.ipam.prefix(n.ipam.Gateway))}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s on bridge %s: %w", addr.IPNet, n.Bridge, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge %s up: %w", n.Bridge, err)
	}
	return nil
}

func deleteLink(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	if err := h.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// errVethAdd marks a failure to create the veth pair, which a bridge
// deleted behind the driver's back (a stale index) may cause.
type errVethAdd struct{ err error }

func (e errVethAdd) Error() string { return e.err.Error() }
func (e errVethAdd) Unwrap() error { return e.err }

// connectVeth makes ep's veth pair: the host end on n's bridge, up, in the
// bridge namespace (h's); the peer created straight in the container's
// namespace under its final name and MAC, which saves the move and rename
// round trips. Then, from a thread in the container's namespace, the
// peer gets its address, goes up and, unless n is internal, gets the
// default route. On failure nothing is left behind. If a name is taken,
// settle waits for deletions in flight that may hold it, then the
// driver tries once more.
func connectVeth(h *netlink.Handle, n *network, ep *endpoint, settle func(*endpoint)) error {
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return err
	}
	f, err := os.Open(ep.NetnsPath)
	if err != nil {
		return plugins.Invalid("container network namespace: %v", err)
	}
	defer f.Close()
	cns := netns.NsHandle(f.Fd())
	attrs := netlink.NewLinkAttrs()
	attrs.Name = ep.HostVeth
	attrs.MTU = n.MTU
	attrs.MasterIndex = n.bridgeIndex
	attrs.Flags = net.FlagUp
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         ep.Interface,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(int(cns)),
		PeerMTU:          uint32(n.MTU),
	}
	err = h.LinkAdd(veth)
	if errors.Is(err, unix.EEXIST) {
		// A Disconnect's deletion still running, a leftover of a Connect
		// cut short (the host name is the endpoint's), or the name is
		// taken in the container.
		settle(ep)
		if derr := deleteLink(h, ep.HostVeth); derr != nil {
			return derr
		}
		err = h.LinkAdd(veth)
		if errors.Is(err, unix.EEXIST) {
			return plugins.Exists("interface %s already exists in the container's network namespace", ep.Interface)
		}
	}
	if err != nil {
		return errVethAdd{fmt.Errorf("create veth pair %s/%s: %w", ep.HostVeth, ep.Interface, err)}
	}
	err = inNetns(cns, func() error {
		ch, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer ch.Close()
		link, err := ch.LinkByName(ep.Interface)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ep.Interface, err)
		}
		if err := ch.AddrAdd(link, &netlink.Addr{IPNet: ipNet(n.ipam.prefix(ep.addr))}); err != nil {
			return fmt.Errorf("address %s: %w", ep.addr, err)
		}
		if err := ch.LinkSetUp(link); err != nil {
			return fmt.Errorf("interface %s up: %w", ep.Interface, err)
		}
		if n.Internal {
			return nil
		}
		// A container on several networks keeps the default route of the
		// first one it joined (Docker's behaviour without gw-priority).
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: n.ipam.Gateway.AsSlice()}
		switch err := ch.RouteAdd(route); {
		case err == nil:
			ep.DefaultRoute = true
		case errors.Is(err, unix.EEXIST):
			ep.DefaultRoute = false
		default:
			return fmt.Errorf("default route via %s: %w", n.ipam.Gateway, err)
		}
		return nil
	})
	if err != nil {
		_ = deleteLink(h, ep.HostVeth)
		return err
	}
	return nil
}

// netnsPrefixes lists the IPv4 networks of the addresses in h's
// namespace, but for loopback and the bridges in skip: a user's subnet
// must not overlap the namespace's own way out (rootlesskit's tap device,
// or the host's interfaces when Moss runs as root).
func netnsPrefixes(h *netlink.Handle, skip map[string]bool) ([]netip.Prefix, error) {
	addrs, err := dump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	ll, err := dump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	links := map[int]string{}
	for _, l := range ll {
		links[l.Attrs().Index] = l.Attrs().Name
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if a.IP.IsLoopback() || skip[links[a.LinkIndex]] {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones).Masked())
	}
	return out, nil
}

// hostVeths lists the names of the driver's veth host ends in h's
// namespace.
func hostVeths(h *netlink.Handle) (map[string]bool, error) {
	ll, err := dump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := map[string]bool{}
	for _, l := range ll {
		if name := l.Attrs().Name; l.Type() == "veth" && len(name) > len(vethPrefix) && name[:len(vethPrefix)] == vethPrefix {
			out[name] = true
		}
	}
	return out, nil
}

// dump runs a netlink dump again while the kernel reports it interrupted
// by a concurrent change (a veth deletion in flight, say): its results are
// then not to be trusted.
func dump[T any](fn func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		out, err := fn()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == 20 {
			return out, err
		}
	}
}
