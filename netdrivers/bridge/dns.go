package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// Embedded DNS. Each network has a server on its gateway address, port 53,
// UDP and TCP, whose sockets are opened in the bridge namespace (they keep
// it, whichever thread serves them). It answers for the containers on its
// own network and forwards the rest, from the plugin's own namespace — the
// host's — to the nameservers of the host's resolv.conf, so that a stub
// resolver on 127.0.0.53 works.
const (
	dnsTTL = 600 // seconds, Docker's
	// forwardTimeout bounds one upstream exchange; with up to three
	// nameservers a query is answered (or fails) within a stub resolver's
	// 5 s retry.
	forwardTimeout = 1500 * time.Millisecond
	// resolvConfRecheck is how often the upstream file is looked at.
	resolvConfRecheck = time.Second
)

// dnsServer is one network's listeners.
type dnsServer struct {
	udp, tcp *dns.Server
}

// startDNS serves h on addr:53 in ns.
func startDNS(ns netns.NsHandle, addr netip.Addr, h dns.Handler) (*dnsServer, error) {
	var pc net.PacketConn
	var ln net.Listener
	hostport := netip.AddrPortFrom(addr, 53).String()
	err := inNetns(ns, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", hostport); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", hostport); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("DNS server on %s: %w", hostport, err)
	}
	s := &dnsServer{
		udp: &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			s.stop()
			return nil, fmt.Errorf("DNS server on %s: %w", hostport, err)
		}
	}
	return s, nil
}

// stop closes the listeners; it waits a little for queries in flight.
// Call it without the driver's lock: handlers take it.
func (s *dnsServer) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*forwardTimeout)
	defer cancel()
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if srv.ShutdownContext(ctx) != nil {
			// Not started: close what it would have.
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
	}
}

// resolver answers one network's queries.
type resolver struct {
	d     *Driver
	netID string
}

// answer is what the driver knows of a name on a network.
type answer struct {
	known    bool // the name (or address, for PTR) is a container's
	addrs    []netip.Addr
	ptr      string
	internal bool
	subnet   netip.Prefix
}

func (r resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if req.Opcode != dns.OpcodeQuery {
		reply(w, req, dns.RcodeNotImplemented)
		return
	}
	if len(req.Question) != 1 {
		reply(w, req, dns.RcodeFormatError)
		return
	}
	q := req.Question[0]
	src, _ := remoteAddr(w)
	a, ok := r.d.lookup(r.netID, q, src)
	if !ok {
		reply(w, req, dns.RcodeServerFailure) // the network is being deleted
		return
	}
	// Only the network's own containers may ask: the gateway of another
	// network is reachable from every bridge.
	if !src.IsValid() || !a.subnet.Contains(src) {
		reply(w, req, dns.RcodeRefused)
		return
	}
	if a.known && q.Qclass == dns.ClassINET {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.RecursionAvailable = true
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: dnsTTL}
		switch {
		case q.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			for _, ip := range a.addrs {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.AsSlice()})
			}
			// Several containers with one alias: spread the load.
			rand.Shuffle(len(m.Answer), func(i, j int) { m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i] })
		case q.Qtype == dns.TypePTR && a.ptr != "":
			hdr.Rrtype = dns.TypePTR
			m.Answer = append(m.Answer, &dns.PTR{Hdr: hdr, Ptr: dns.Fqdn(a.ptr)})
		}
		// Other types of a container's name: no data (it has no IPv6).
		if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
			size := dns.MinMsgSize
			if o := req.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
		return
	}
	if a.internal {
		// Docker does not forward for internal networks either: the
		// network has no way out, its DNS is no side door.
		reply(w, req, dns.RcodeServerFailure)
		return
	}
	r.d.forward(w, req)
}

func remoteAddr(w dns.ResponseWriter) (netip.Addr, bool) {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}

func reply(w dns.ResponseWriter, req *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	_ = w.WriteMsg(m)
}

// names returns the lowercase names an endpoint answers to: its
// container's name, short ID and aliases. (On the default network, like
// Docker's default bridge, none: lookup does not ask.)
func (ep *endpoint) names() []string {
	var out []string
	add := func(s string) {
		if s = strings.ToLower(strings.TrimSuffix(s, ".")); s != "" {
			out = append(out, s)
		}
	}
	add(ep.ContainerName)
	// The short ID, as Docker. A full ID (64 characters) cannot be asked
	// for: a DNS label has at most 63.
	if len(ep.ContainerID) > 12 {
		add(ep.ContainerID[:12])
	} else {
		add(ep.ContainerID)
	}
	for _, a := range ep.Aliases {
		add(a)
	}
	return out
}

// lookup answers q, asked by src on the network netID, from the endpoints
// of every network the asking container is on (as Docker's DNS: a
// container connected to two networks finds the names of both, through
// whichever network's server its resolv.conf names), each name with its
// address on the network the two share.
func (d *Driver) lookup(netID string, q dns.Question, src netip.Addr) (answer, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n, ok := d.nets[netID]
	if !ok {
		return answer{}, false
	}
	a := answer{internal: n.Internal, subnet: n.ipam.Subnet}
	if n.Default {
		return a, true
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if ip, ok := reverseName(name); ok {
		for _, ep := range n.Endpoints {
			if ep.addr == ip && ep.ContainerName != "" {
				a.known, a.ptr = true, strings.ToLower(ep.ContainerName)
				return a, true
			}
		}
		return a, true
	}
	nets := []*network{n}
	asker := ""
	for _, ep := range n.Endpoints {
		if ep.addr == src {
			asker = ep.ContainerID
		}
	}
	if asker != "" {
		for id, other := range d.nets {
			if id == netID || other.Default {
				continue
			}
			for _, ep := range other.Endpoints {
				if ep.ContainerID == asker {
					nets = append(nets, other)
					break
				}
			}
		}
	}
	for _, n := range nets {
		for _, ep := range n.Endpoints {
			for _, s := range ep.names() {
				if s == name {
					a.known = true
					a.addrs = append(a.addrs, ep.addr)
					break
				}
			}
		}
	}
	return a, true
}

// reverseName parses d.c.b.a.in-addr.arpa.
func reverseName(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	for i, j := 0, 3; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	ip, err := netip.ParseAddr(strings.Join(parts, "."))
	return ip, err == nil && ip.Is4()
}

// forward relays req to the upstream nameservers in turn, over the
// protocol it came by, and relays the first answer that is not a server
// failure or refusal (NXDOMAIN included); when none answers, SERVFAIL.
// The exchange runs on this goroutine's thread, in the plugin's own
// namespace.
func (d *Driver) forward(w dns.ResponseWriter, req *dns.Msg) {
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &dns.Client{Net: proto, Timeout: forwardTimeout, UDPSize: dns.MaxMsgSize}
	var last *dns.Msg
	for _, server := range d.upstream.servers() {
		resp, _, err := c.Exchange(req, server)
		if err != nil {
			d.log.Debug("DNS forward failed", "server", server, "name", req.Question[0].Name, "error", err)
			continue
		}
		resp.Id = req.Id
		last = resp
		if resp.Rcode != dns.RcodeServerFailure && resp.Rcode != dns.RcodeRefused {
			break
		}
	}
	if last == nil {
		reply(w, req, dns.RcodeServerFailure)
		return
	}
	_ = w.WriteMsg(last)
}

// upstream is the host's resolv.conf, read again when it changes.
type upstream struct {
	path string

	mu      sync.Mutex
	checked time.Time
	mtime   time.Time
	size    int64
	list    []string
}

func (u *upstream) servers() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if time.Since(u.checked) < resolvConfRecheck && u.list != nil {
		return u.list
	}
	u.checked = time.Now()
	fi, err := os.Stat(u.path)
	if err == nil && u.list != nil && fi.ModTime().Equal(u.mtime) && fi.Size() == u.size {
		return u.list
	}
	list, err := readResolvConf(u.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return u.list // keep what worked
	}
	if len(list) == 0 {
		// What the host's own resolver would use.
		list = []string{"127.0.0.1:53"}
	}
	if fi != nil {
		u.mtime, u.size = fi.ModTime(), fi.Size()
	}
	u.list = list
	return list
}

// readResolvConf returns the nameservers of a resolv.conf as host:port.
func readResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if ip, err := netip.ParseAddr(fields[1]); err == nil {
			out = append(out, netip.AddrPortFrom(ip, 53).String())
		}
	}
	return out, sc.Err()
}
