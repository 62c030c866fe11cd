package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/hashicorp/go-hclog"
	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// Version is the adapter's version (go build -ldflags "-X main.Version=…").
var Version = "dev"

// Defaults of the plugin options.
var (
	defaultConfDirs = []string{"/etc/cni/net.d"}
	defaultBinDirs  = []string{"/usr/lib/cni", "/opt/cni/bin"}
)

// driver adapts CNI plugins to Moss's NetworkDriver.
type driver struct {
	log hclog.Logger

	mu       sync.Mutex // guards cfg, netLocks
	cfg      *config
	netLocks map[string]*sync.Mutex
	// createMu makes CreateNetwork and DeleteNetwork one at a time
	// (choosing free subnets).
	createMu sync.Mutex
}

// config is what Configure set up.
type config struct {
	stateDir string
	netns    string   // the namespace that holds the networks; "" for the plugin's own
	confDirs []string // searched for -o conflist=NAME; the state's net.d last
	binDirs  []string
	exec     *nsExec
	cni      *libcni.CNIConfig
}

func (c *config) netDir() string    { return filepath.Join(c.stateDir, "net.d") }
func (c *config) recordDir() string { return filepath.Join(c.stateDir, "networks") }
func (c *config) ipamDir() string   { return filepath.Join(c.stateDir, "ipam") }
func (c *config) genFile(id string) string {
	return filepath.Join(c.netDir(), id+".conflist")
}

// dataDir is host-local's lease directory for conflists that set none:
// Moss's own when it runs rootless (see normalize), host-local's default
// (/var/lib/cni/networks, shared with other runtimes) as real root.
func (c *config) dataDir() string {
	if c.netns == "" {
		return ""
	}
	return c.ipamDir()
}

// record is what the adapter keeps of a network, in
// StateDir/networks/ID.json.
type record struct {
	ID   string `json:"id"`
	Name string `json:"name"` // Moss's name of it, for people reading the state
	// Exactly one of Conflist, ConflistFile and Generated.
	Conflist     string `json:"conflist,omitempty"`
	ConflistFile string `json:"conflist_file,omitempty"`
	Generated    bool   `json:"generated,omitempty"`
	// CNIName is the network name of its list (what libcni caches by).
	CNIName string `json:"cni_name"`
	// Bridge is the bridge of a generated list: DeleteNetwork removes it.
	Bridge string       `json:"bridge,omitempty"`
	IPAM   []ipamConfig `json:"ipam,omitempty"`
}

func newDriver(log hclog.Logger) *driver {
	return &driver{log: log, netLocks: map[string]*sync.Mutex{}}
}

func (d *driver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: "cni", Kind: plugins.KindNetwork, Version: Version}, nil
}

// splitList splits a colon-separated list of directories.
func splitList(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ":") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

func (d *driver) Configure(_ context.Context, req *basev1.ConfigureRequest) error {
	if req.GetStateDir() == "" {
		return plugins.Invalid("cni: no state directory given")
	}
	c := &config{
		stateDir: req.GetStateDir(),
		netns:    req.GetNetnsPath(),
		confDirs: defaultConfDirs,
		binDirs:  defaultBinDirs,
	}
	for k, v := range req.GetOptions() {
		switch k {
		case "conf_dir":
			c.confDirs = splitList(v)
		case "bin_dir":
			c.binDirs = splitList(v)
		default:
			return plugins.Invalid("cni: unknown option %q in [plugins.options.cni]: the options are conf_dir and bin_dir", k)
		}
	}
	for _, dirs := range [][]string{c.confDirs, c.binDirs} {
		for _, dir := range dirs {
			if !filepath.IsAbs(dir) {
				return plugins.Invalid("cni: directory %q in [plugins.options.cni] is not an absolute path", dir)
			}
		}
	}
	if len(c.binDirs) == 0 {
		return plugins.Invalid("cni: bin_dir names no directory")
	}
	c.confDirs = append(slices.Clone(c.confDirs), c.netDir())
	for _, dir := range []string{c.netDir(), c.recordDir(), c.ipamDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if c.netns != "" && !isNetns(c.netns) {
		return plugins.Invalid("cni: %s is not a network namespace", c.netns)
	}
	c.exec = &nsExec{netns: c.netns, stderr: d.log.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})}
	c.cni = libcni.NewCNIConfigWithCacheDir(c.binDirs, filepath.Join(c.stateDir, "cache"), c.exec)
	d.mu.Lock()
	d.cfg = c
	d.mu.Unlock()
	d.log.Debug("configured", "state", c.stateDir, "netns", c.netns, "conf_dirs", c.confDirs, "bin_dirs", c.binDirs)
	return nil
}

func (d *driver) Capabilities(context.Context) (*networkv1.CapabilitiesResponse, error) {
	return &networkv1.CapabilitiesResponse{
		Namespace:    networkv1.Namespace_NAMESPACE_ISOLATED,
		UserNetworks: true,
		Dns:          false,
	}, nil
}

// config returns the configuration; an error before Configure.
func (d *driver) config() (*config, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg == nil {
		return nil, errors.New("cni: not configured")
	}
	return d.cfg, nil
}

// netLock is the lock of the network id: endpoints of one network are
// set up one at a time (CNI plugins are not all safe to run concurrently
// on one network, e.g. iptables chains).
func (d *driver) netLock(id string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.netLocks[id]
	if !ok {
		l = &sync.Mutex{}
		d.netLocks[id] = l
	}
	return l
}

func (c *config) readRecord(id string) (*record, error) {
	if strings.ContainsAny(id, "/\x00") || id == "" || id == "." || id == ".." {
		return nil, plugins.Invalid("cni: invalid network id %q", id)
	}
	b, err := os.ReadFile(filepath.Join(c.recordDir(), id+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, plugins.NotFound("cni: no network %s", id)
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cni: state of network %s: %w", id, err)
	}
	return &r, nil
}

func (c *config) writeRecord(r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(c.recordDir(), r.ID+".json"), b)
}

func (c *config) records() ([]*record, error) {
	ents, err := os.ReadDir(c.recordDir())
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		r, err := c.readRecord(id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// load reads the network list of r, normalized (see normalize), and
// returns the file it is in.
func (c *config) load(r *record) (*libcni.NetworkConfigList, string, error) {
	var list *libcni.NetworkConfigList
	var file string
	var err error
	switch {
	case r.Generated:
		file = c.genFile(r.ID)
		list, err = libcni.NetworkConfFromFile(file)
		if err != nil {
			return nil, file, fmt.Errorf("cni: generated CNI network list %s: %w", file, err)
		}
	case r.Conflist != "":
		list, file, err = findConflist(c.confDirs, r.Conflist)
	default:
		file = r.ConflistFile
		list, err = loadConflistFile(file)
	}
	if err != nil {
		return nil, file, err
	}
	list, err = normalize(list, file, c.dataDir())
	return list, file, err
}

// validate checks that the plugins of list, and their IPAM plugins, are
// in the bin dirs and speak the list's CNI version.
func (c *config) validate(ctx context.Context, list *libcni.NetworkConfigList, file string) error {
	check := func(what, typ string) error {
		_, err := c.cni.ValidateNetwork(ctx, &libcni.PluginConfig{Network: &types.PluginConf{Type: typ, CNIVersion: list.CNIVersion}})
		if err != nil {
			return plugins.Invalid("cni: CNI network list %s: %s: %v (bin_dir %s)", file, what, err, strings.Join(c.binDirs, ":"))
		}
		return nil
	}
	for i, p := range list.Plugins {
		if err := check(fmt.Sprintf("plugin %d", i), p.Network.Type); err != nil {
			return err
		}
		if p.Network.IPAM.Type != "" {
			if err := check(fmt.Sprintf("IPAM of plugin %d (%s)", i, p.Network.Type), p.Network.IPAM.Type); err != nil {
				return err
			}
		}
	}
	return nil
}

// Options of networks with a generated list; Docker's bridge options are
// taken under their own names.
var genOptionNames = map[string]string{
	"bridge":                         "bridge",
	"mtu":                            "mtu",
	"ipmasq":                         "ipmasq",
	"com.docker.network.bridge.name": "bridge",
	"com.docker.network.driver.mtu":  "mtu",
	"com.docker.network.bridge.enable_ip_masquerade": "ipmasq",
}

func (d *driver) CreateNetwork(ctx context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	c, err := d.config()
	if err != nil {
		return nil, err
	}
	d.createMu.Lock()
	defer d.createMu.Unlock()
	r, err := c.readRecord(req.GetNetworkId())
	switch {
	case err == nil:
		// Known: the agent tells us again after a restart.
		if r.Generated {
			if _, err := os.Stat(c.genFile(r.ID)); err != nil {
				return nil, fmt.Errorf("cni: network %s: %w", r.ID, err)
			}
		}
		return &networkv1.CreateNetworkResponse{Ipam: toProto(r.IPAM)}, nil
	case !errors.Is(err, plugins.ErrNotFound):
		return nil, err
	}
	r = &record{ID: req.GetNetworkId(), Name: req.GetName()}
	opts := req.GetOptions()
	r.Conflist, r.ConflistFile = opts["conflist"], opts["conflist_file"]
	if r.Conflist != "" || r.ConflistFile != "" {
		if err := d.createFromConflist(ctx, c, r, req); err != nil {
			return nil, err
		}
	} else if err := d.createGenerated(ctx, c, r, req); err != nil {
		return nil, err
	}
	if err := c.writeRecord(r); err != nil {
		if r.Generated {
			_ = os.Remove(c.genFile(r.ID))
		}
		return nil, err
	}
	d.log.Info("network created", "network", r.ID, "name", r.Name, "cni_name", r.CNIName,
		"conflist", r.Conflist, "conflist_file", r.ConflistFile, "generated", r.Generated, "ipam", r.IPAM)
	return &networkv1.CreateNetworkResponse{Ipam: toProto(r.IPAM)}, nil
}

func toProto(ipam []ipamConfig) []*networkv1.IPAMConfig {
	var out []*networkv1.IPAMConfig
	for _, ic := range ipam {
		out = append(out, &networkv1.IPAMConfig{Subnet: ic.Subnet, Gateway: ic.Gateway, IpRange: ic.IPRange})
	}
	return out
}

// createFromConflist sets r up for the network list its options name.
func (d *driver) createFromConflist(ctx context.Context, c *config, r *record, req *networkv1.CreateNetworkRequest) error {
	if r.Conflist != "" && r.ConflistFile != "" {
		return plugins.Invalid("cni: give either -o conflist=NAME or -o conflist_file=PATH, not both")
	}
	for k := range req.GetOptions() {
		if k != "conflist" && k != "conflist_file" {
			return plugins.Invalid("cni: option %q does not go with a conflist: the network list says how the network is made", k)
		}
	}
	if req.GetInternal() {
		return plugins.Invalid("cni: --internal does not go with a conflist: the network list sets the routes")
	}
	list, file, err := c.load(r)
	if err != nil {
		return err
	}
	if err := c.validate(ctx, list, file); err != nil {
		return err
	}
	r.CNIName = list.Name
	r.IPAM = ipamOf(list)
	// The agent passes the addressing it was given back after a
	// restart: that of the list is fine, another one is not.
	for _, ic := range req.GetIpam() {
		if !slices.ContainsFunc(r.IPAM, func(have ipamConfig) bool { return sameSubnet(have.Subnet, ic.GetSubnet()) }) {
			return plugins.Invalid("cni: subnet %q: a network made from CNI network list %s has the list's addressing (%s)", ic.GetSubnet(), file, subnets(r.IPAM))
		}
	}
	// Another network on the same subnets (of this list, or another)
	// would be the same network under two names.
	recs, err := c.records()
	if err != nil {
		return err
	}
	for _, ic := range r.IPAM {
		for _, o := range recs {
			if slices.ContainsFunc(o.IPAM, func(oc ipamConfig) bool { return overlaps(oc.Subnet, ic.Subnet) }) {
				return plugins.Exists("cni: subnet %s of CNI network list %s overlaps network %s (%s)", ic.Subnet, file, o.Name, o.ID)
			}
		}
	}
	return nil
}

func overlaps(a, b string) bool {
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	return err1 == nil && err2 == nil && pa.Overlaps(pb)
}

func sameSubnet(a, b string) bool {
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	return err1 == nil && err2 == nil && pa.Masked() == pb.Masked()
}

func subnets(ipam []ipamConfig) string {
	if len(ipam) == 0 {
		return "no host-local subnets"
	}
	var s []string
	for _, ic := range ipam {
		s = append(s, ic.Subnet)
	}
	return strings.Join(s, ", ")
}

// createGenerated writes a bridge + host-local network list for r.
func (d *driver) createGenerated(ctx context.Context, c *config, r *record, req *networkv1.CreateNetworkRequest) (err error) {
	r.Generated = true
	r.CNIName = "moss-" + sanitize(r.ID, 64)
	if r.Bridge, err = d.bridgeName(c, r.ID); err != nil {
		return err
	}
	o := genOptions{name: r.CNIName, internal: req.GetInternal(), dataDir: c.ipamDir()}
	masq := ""
	for k, v := range req.GetOptions() {
		switch genOptionNames[k] {
		case "bridge":
			if len(v) == 0 || len(v) > 15 || strings.ContainsAny(v, "/ :\t\n") {
				return plugins.Invalid("cni: bridge name %q: 1 to 15 characters, no '/', ':' or spaces", v)
			}
			r.Bridge = v
		case "mtu":
			n, err := strconv.Atoi(v)
			if err != nil || n < 68 || n > 65535 {
				return plugins.Invalid("cni: mtu %q: a number from 68 to 65535", v)
			}
			o.mtu = n
		case "ipmasq":
			if _, err := strconv.ParseBool(v); err != nil {
				return plugins.Invalid("cni: ipmasq %q: true or false", v)
			}
			masq = v
		default:
			return plugins.Invalid("cni: unknown network option %q: the options are conflist=NAME, conflist_file=PATH, or for a generated bridge network bridge, mtu and ipmasq", k)
		}
	}
	o.bridge = r.Bridge
	ipam, err := d.chooseIPAM(c, r, req)
	if err != nil {
		return err
	}
	o.ipam = ipam
	switch {
	case o.internal:
		o.ipMasq = false
	case masq != "":
		o.ipMasq, _ = strconv.ParseBool(masq)
	default:
		o.ipMasq = d.iptablesWorks(ctx, c)
	}
	b, err := generate(o)
	if err != nil {
		return err
	}
	if err := writeFile(c.genFile(r.ID), b); err != nil {
		return err
	}
	list, file, err := c.load(r)
	if err == nil {
		err = c.validate(ctx, list, file)
	}
	if err != nil {
		_ = os.Remove(c.genFile(r.ID))
		return err
	}
	r.IPAM = ipam
	return nil
}

// iptablesWorks tells whether iptables can set up NAT in the networks'
// namespace (the bridge plugin's ipMasq runs iptables): iptables-nft can
// in a rootless namespace, iptables-legacy cannot take its lock there.
func (d *driver) iptablesWorks(ctx context.Context, c *config) bool {
	out, err := c.exec.run(ctx, "iptables", "-w", "5", "-t", "nat", "-S", "POSTROUTING")
	if err != nil {
		d.log.Warn("iptables does not work in the network namespace: generated networks get no NAT (ipMasq false); containers reach no further than the namespace",
			"error", err, "output", strings.TrimSpace(string(out)))
		return false
	}
	return true
}

// bridgeName names the bridge of a generated network: "cni-" and 11 hex
// digits of a hash of its id (15 characters, the most a Linux interface
// name has), which no other network of the adapter's has.
func (d *driver) bridgeName(c *config, id string) (string, error) {
	recs, err := c.records()
	if err != nil {
		return "", err
	}
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(id)))
	for i := 0; i+11 <= len(sum); i++ {
		name := "cni-" + sum[i:i+11]
		if !slices.ContainsFunc(recs, func(r *record) bool { return r.Bridge == name }) {
			return name, nil
		}
	}
	return "", plugins.Exists("cni: no free bridge name for network %s: give one with -o bridge=NAME", id)
}

// sanitize keeps the letters and digits of s, at most n of them.
func sanitize(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() == n {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// chooseIPAM checks the requested subnets, or picks a free 10.90.N.0/24
// (and fd90:0:0:N::/64 for IPv6) that overlaps neither another network of
// the adapter's nor an address in the networks' namespace.
func (d *driver) chooseIPAM(c *config, r *record, req *networkv1.CreateNetworkRequest) ([]ipamConfig, error) {
	type used struct {
		pfx  netip.Prefix
		what string
	}
	var taken []used
	recs, err := c.records()
	if err != nil {
		return nil, err
	}
	for _, o := range recs {
		for _, ic := range o.IPAM {
			if p, err := netip.ParsePrefix(ic.Subnet); err == nil {
				taken = append(taken, used{p.Masked(), fmt.Sprintf("network %s (%s)", o.Name, o.ID)})
			}
		}
	}
	addrs, err := usedPrefixes(c.netns)
	if err != nil {
		return nil, fmt.Errorf("cni: addresses in the network namespace: %w", err)
	}
	for ifc, nets := range addrs {
		if ifc == r.Bridge {
			continue // ours, left from before a loss of state
		}
		for _, n := range nets {
			if p, ok := netipPrefix(n); ok && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
				taken = append(taken, used{p.Masked(), "interface " + ifc})
			}
		}
	}
	overlap := func(p netip.Prefix) string {
		for _, u := range taken {
			if u.pfx.Overlaps(p) {
				return u.what
			}
		}
		return ""
	}
	var out []ipamConfig
	have6 := false
	for _, ic := range req.GetIpam() {
		subnet, err := netip.ParsePrefix(ic.GetSubnet())
		if err != nil {
			return nil, plugins.Invalid("cni: invalid subnet %q", ic.GetSubnet())
		}
		if subnet != subnet.Masked() {
			return nil, plugins.Invalid("cni: invalid subnet %s: it has host bits set (%s)", subnet, subnet.Masked())
		}
		if max := map[bool]int{true: 30, false: 126}[subnet.Addr().Is4()]; subnet.Bits() > max {
			return nil, plugins.Invalid("cni: subnet %s is too small", subnet)
		}
		out1 := ipamConfig{Subnet: subnet.String()}
		if gw := ic.GetGateway(); gw != "" {
			a, err := netip.ParseAddr(gw)
			if err != nil || !subnet.Contains(a) || a == subnet.Addr() || (a.Is4() && a == lastAddr(subnet)) {
				return nil, plugins.Invalid("cni: gateway %q is not a host address of subnet %s", gw, subnet)
			}
			out1.Gateway = a.String()
		} else {
			out1.Gateway = subnet.Addr().Next().String()
		}
		if ipr := ic.GetIpRange(); ipr != "" {
			p, err := netip.ParsePrefix(ipr)
			if err != nil || !subnet.Contains(p.Masked().Addr()) || p.Bits() < subnet.Bits() {
				return nil, plugins.Invalid("cni: ip-range %q is not within subnet %s", ipr, subnet)
			}
			out1.IPRange = p.Masked().String()
		}
		if what := overlap(subnet); what != "" {
			return nil, plugins.Exists("cni: subnet %s overlaps %s", subnet, what)
		}
		for _, o := range out {
			if p, _ := netip.ParsePrefix(o.Subnet); p.Overlaps(subnet) {
				return nil, plugins.Invalid("cni: subnets %s and %s overlap", p, subnet)
			}
		}
		have6 = have6 || subnet.Addr().Is6()
		out = append(out, out1)
	}
	pick := func(format string, max int) (netip.Prefix, bool) {
		for n := 0; n < max; n++ {
			p := netip.MustParsePrefix(fmt.Sprintf(format, n))
			if overlap(p) == "" {
				return p, true
			}
		}
		return netip.Prefix{}, false
	}
	if !slices.ContainsFunc(out, func(ic ipamConfig) bool { return strings.Contains(ic.Subnet, ".") }) {
		p, ok := pick("10.90.%d.0/24", 256)
		if !ok {
			return nil, plugins.Exists("cni: no free subnet left in 10.90.0.0/16: give one with --subnet")
		}
		out = append([]ipamConfig{{Subnet: p.String(), Gateway: p.Addr().Next().String()}}, out...)
	}
	if req.GetIpv6() && !have6 {
		p, ok := pick("fd90:0:0:%x::/64", 0x10000)
		if !ok {
			return nil, plugins.Exists("cni: no free IPv6 subnet left in fd90::/48: give one with --subnet")
		}
		out = append(out, ipamConfig{Subnet: p.String(), Gateway: p.Addr().Next().String()})
	}
	return out, nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func (d *driver) DeleteNetwork(_ context.Context, req *networkv1.DeleteNetworkRequest) error {
	c, err := d.config()
	if err != nil {
		return err
	}
	l := d.netLock(req.GetNetworkId())
	l.Lock()
	defer l.Unlock()
	d.createMu.Lock()
	defer d.createMu.Unlock()
	r, err := c.readRecord(req.GetNetworkId())
	if errors.Is(err, plugins.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Generated {
		// Its bridge and leases are the adapter's; a conflist's are not
		// (another network may use the same list).
		if err := deleteLink(c.netns, r.Bridge); err != nil {
			return fmt.Errorf("cni: remove bridge %s of network %s: %w", r.Bridge, r.ID, err)
		}
		if err := os.RemoveAll(filepath.Join(c.ipamDir(), r.CNIName)); err != nil {
			return err
		}
		if err := os.Remove(c.genFile(r.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(filepath.Join(c.recordDir(), r.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d.mu.Lock()
	delete(d.netLocks, r.ID)
	d.mu.Unlock()
	d.log.Info("network deleted", "network", r.ID, "name", r.Name)
	return nil
}

// attachments returns libcni's cached attachments of the endpoint.
func (c *config) attachments(endpoint string) ([]*libcni.NetworkAttachment, error) {
	atts, err := c.cni.GetCachedAttachments(endpoint)
	if err != nil {
		return nil, fmt.Errorf("cni: cached attachments of endpoint %s: %w", endpoint, err)
	}
	return atts, nil
}

func (d *driver) Connect(ctx context.Context, req *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	c, err := d.config()
	if err != nil {
		return nil, err
	}
	if e := validName(req.GetEndpointId()); e != "" {
		return nil, plugins.Invalid("cni: endpoint id %q: %s", req.GetEndpointId(), e)
	}
	ifName := req.GetInterfaceName()
	if ifName == "" {
		ifName = "eth0"
	}
	if !isNetns(req.GetNetnsPath()) {
		return nil, plugins.Invalid("cni: %q is not a network namespace", req.GetNetnsPath())
	}
	l := d.netLock(req.GetNetworkId())
	l.Lock()
	defer l.Unlock()
	r, err := c.readRecord(req.GetNetworkId())
	if err != nil {
		return nil, err
	}
	// Connected already: the cached result, unless that attachment
	// was to another namespace (a container started again).
	atts, err := c.attachments(req.GetEndpointId())
	if err != nil {
		return nil, err
	}
	for _, att := range atts {
		if att.Network != r.CNIName {
			continue
		}
		list, err := libcni.NetworkConfFromBytes(att.Config)
		if err != nil {
			return nil, fmt.Errorf("cni: cached configuration of endpoint %s: %w", req.GetEndpointId(), err)
		}
		rt := &libcni.RuntimeConf{ContainerID: att.ContainerID, IfName: att.IfName, NetNS: att.NetNS,
			Args: att.CniArgs, CapabilityArgs: att.CapabilityArgs}
		if att.NetNS == req.GetNetnsPath() && isNetns(att.NetNS) {
			res, err := c.cni.GetNetworkListCachedResult(list, rt)
			if err == nil && res != nil {
				return toResponse(res, att.IfName)
			}
		}
		if err := d.del(ctx, c, list, rt); err != nil {
			return nil, err
		}
	}
	list, _, err := c.load(r)
	if err != nil {
		return nil, err
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    req.GetEndpointId(),
		NetNS:          req.GetNetnsPath(),
		IfName:         ifName,
		CapabilityArgs: map[string]any{},
	}
	var ips []string
	for _, a := range []string{req.GetIpv4Address(), req.GetIpv6Address()} {
		if a == "" {
			continue
		}
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return nil, plugins.Invalid("cni: invalid address %q", a)
		}
		// Known subnets (host-local's) must hold it.
		if len(r.IPAM) > 0 && !slices.ContainsFunc(r.IPAM, func(ic ipamConfig) bool {
			p, err := netip.ParsePrefix(ic.Subnet)
			return err == nil && p.Contains(addr)
		}) {
			return nil, plugins.Invalid("cni: address %s is not in the subnets of network %s (%s)", addr, r.Name, subnets(r.IPAM))
		}
		ips = append(ips, a)
	}
	if len(ips) > 0 {
		if !hasCapability(list, "ips") {
			return nil, plugins.Unsupported("cni: the CNI network list %q of network %s takes no static addresses (no plugin has the \"ips\" capability)", list.Name, r.Name)
		}
		rt.CapabilityArgs["ips"] = ips
	}
	if mac := req.GetMacAddress(); mac != "" {
		if _, err := net.ParseMAC(mac); err != nil {
			return nil, plugins.Invalid("cni: invalid MAC address %q", mac)
		}
		if !hasCapability(list, "mac") {
			return nil, plugins.Unsupported("cni: the CNI network list %q of network %s takes no MAC address (no plugin has the \"mac\" capability)", list.Name, r.Name)
		}
		rt.CapabilityArgs["mac"] = mac
	}
	// A failed ADD is undone by a DEL, which removes the interface
	// ifName: it must not be another endpoint's.
	var taken bool
	if err := inNetns(rt.NetNS, func() error {
		_, err := net.InterfaceByName(ifName)
		taken = err == nil
		return nil
	}); err != nil {
		return nil, err
	}
	if taken {
		return nil, plugins.Exists("cni: the container's network namespace has an interface %s already", ifName)
	}
	res, err := c.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		// Release what the plugins before the failing one took.
		if derr := c.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt); derr != nil {
			d.log.Warn("clean-up after a failed connect", "endpoint", rt.ContainerID, "error", derr)
		}
		return nil, addError(err, len(ips) > 0)
	}
	resp, err := toResponse(res, ifName)
	if err != nil {
		_ = d.del(context.WithoutCancel(ctx), c, list, rt)
		return nil, err
	}
	if mac := req.GetMacAddress(); mac != "" {
		for _, ifc := range resp.Interfaces {
			if ifc.Name == ifName && !strings.EqualFold(ifc.MacAddress, mac) {
				_ = d.del(context.WithoutCancel(ctx), c, list, rt)
				return nil, plugins.Unsupported("cni: the CNI network list %q of network %s ignored the requested MAC address %s (got %s)", list.Name, r.Name, mac, ifc.MacAddress)
			}
		}
	}
	d.log.Debug("connected", "network", r.ID, "endpoint", rt.ContainerID, "netns", rt.NetNS, "interfaces", resp.Interfaces)
	return resp, nil
}

// addError gives a failed ADD its kind: a requested address that host-local
// has given away is taken; one outside its ranges is invalid.
func addError(err error, static bool) error {
	msg := err.Error()
	if static {
		switch {
		case strings.Contains(msg, "is not available in range set"), strings.Contains(msg, "is subnet's gateway"):
			return plugins.Exists("cni: %s", msg)
		case strings.Contains(msg, "not in range set"), strings.Contains(msg, "could not allocate IP"),
			strings.Contains(msg, "failed to allocate all requested IPs"), strings.Contains(msg, "no IP ranges"):
			return plugins.Invalid("cni: %s", msg)
		}
	}
	var te *types.Error
	if errors.As(err, &te) && te.Code == types.ErrInvalidNetworkConfig {
		return plugins.Invalid("cni: %s", msg)
	}
	return fmt.Errorf("cni: %w", err)
}

// del runs DEL for an attachment; a namespace that is gone is passed as
// none, which CNI plugins take as "release the addresses only".
func (d *driver) del(ctx context.Context, c *config, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	if !isNetns(rt.NetNS) {
		rt.NetNS = ""
	}
	if err := c.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("cni: disconnect endpoint %s: %w", rt.ContainerID, err)
	}
	return nil
}

func (d *driver) Disconnect(ctx context.Context, req *networkv1.DisconnectRequest) error {
	c, err := d.config()
	if err != nil {
		return err
	}
	if validName(req.GetEndpointId()) != "" {
		return nil // never connected
	}
	l := d.netLock(req.GetNetworkId())
	l.Lock()
	defer l.Unlock()
	atts, err := c.attachments(req.GetEndpointId())
	if err != nil {
		return err
	}
	for _, att := range atts {
		list, err := libcni.NetworkConfFromBytes(att.Config)
		if err != nil {
			return fmt.Errorf("cni: cached configuration of endpoint %s: %w", req.GetEndpointId(), err)
		}
		netns := req.GetNetnsPath()
		if netns == "" {
			netns = att.NetNS
		}
		rt := &libcni.RuntimeConf{ContainerID: att.ContainerID, IfName: att.IfName, NetNS: netns,
			Args: att.CniArgs, CapabilityArgs: att.CapabilityArgs}
		if err := d.del(ctx, c, list, rt); err != nil {
			return err
		}
		d.log.Debug("disconnected", "network", req.GetNetworkId(), "endpoint", att.ContainerID)
	}
	return nil
}
