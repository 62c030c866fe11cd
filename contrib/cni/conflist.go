package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/moss-containers/moss/plugins"
)

// cniVersion is the version of generated conflists: the newest that
// Debian 12's containernetworking-plugins (1.1.1) speak.
const cniVersion = "1.0.0"

// confExts are the files searched in the conf dirs, as libcni and CRI
// runtimes do: network lists, and single-plugin configurations.
var confExts = []string{".conflist", ".conf", ".json"}

// readConf reads a network list or a single-plugin configuration (made
// a list of one) from file.
func readConf(file string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(file) == ".conflist" {
		return libcni.NetworkConfFromFile(file)
	}
	c, err := libcni.ConfFromFile(file)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(c)
}

// findConflist looks for the network list called name in dirs, in the
// order of the dirs, files in lexical order in each: the first wins.
// Files that do not parse are passed over, and named when nothing matches.
func findConflist(dirs []string, name string) (*libcni.NetworkConfigList, string, error) {
	var bad []string
	for _, dir := range dirs {
		files, err := libcni.ConfFiles(dir, confExts)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", dir, err))
			continue
		}
		sort.Strings(files)
		for _, f := range files {
			list, err := readConf(f)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", f, err))
				continue
			}
			if list.Name == name {
				return list, f, nil
			}
		}
	}
	msg := fmt.Sprintf("no CNI network list named %q in %s", name, strings.Join(dirs, ", "))
	if len(bad) > 0 {
		msg += " (unreadable: " + strings.Join(bad, "; ") + ")"
	}
	return nil, "", plugins.NotFound("cni: %s", msg)
}

// loadConflistFile reads the network list in file.
func loadConflistFile(file string) (*libcni.NetworkConfigList, error) {
	if !filepath.IsAbs(file) {
		return nil, plugins.Invalid("cni: conflist_file %q: the path must be absolute", file)
	}
	list, err := readConf(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, plugins.NotFound("cni: CNI network list %s does not exist", file)
	}
	if err != nil {
		return nil, plugins.Invalid("cni: CNI network list %s: %v", file, err)
	}
	return list, nil
}

// normalize returns list as a list of inlined plugins (plugins that
// libcni loaded from NAME/*.conf beside the file included), so that the
// configuration libcni caches with each attachment is complete. With
// dataDir set, host-local IPAM without a dataDir of its own keeps its
// leases there: /var/lib/cni is not writable for a rootless plugin, and a
// rootless Moss's networks are its own.
func normalize(list *libcni.NetworkConfigList, file, dataDir string) (*libcni.NetworkConfigList, error) {
	raw := map[string]any{}
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return nil, plugins.Invalid("cni: CNI network list %s: %v", file, err)
	}
	confs := make([]any, 0, len(list.Plugins))
	for i, p := range list.Plugins {
		c := map[string]any{}
		if err := json.Unmarshal(p.Bytes, &c); err != nil {
			return nil, plugins.Invalid("cni: CNI network list %s: plugin %d: %v", file, i, err)
		}
		if ipam, ok := c["ipam"].(map[string]any); ok && dataDir != "" && ipam["type"] == "host-local" {
			if _, set := ipam["dataDir"]; !set {
				ipam["dataDir"] = dataDir
			}
		}
		confs = append(confs, c)
	}
	raw["plugins"] = confs
	raw["loadOnlyInlinedPlugins"] = true
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	out, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, plugins.Invalid("cni: CNI network list %s: %v", file, err)
	}
	if len(out.Plugins) == 0 {
		return nil, plugins.Invalid("cni: CNI network list %s has no plugins", file)
	}
	if e := validName(out.Name); e != "" {
		return nil, plugins.Invalid("cni: CNI network list %s: network name %q: %s", file, out.Name, e)
	}
	for i, p := range out.Plugins {
		if p.Network.Type == "" {
			return nil, plugins.Invalid("cni: CNI network list %s: plugin %d has no type", file, i)
		}
	}
	return out, nil
}

// validName checks a CNI network name as libcni does; "" when it is valid.
func validName(name string) string {
	if name == "" {
		return "empty"
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && (r == '_' || r == '.' || r == '-')
		if !ok {
			return "only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed"
		}
	}
	return ""
}

// ipamOf returns the addressing of the host-local IPAM in list, nil when it
// uses another IPAM plugin or none.
func ipamOf(list *libcni.NetworkConfigList) []ipamConfig {
	var out []ipamConfig
	for _, p := range list.Plugins {
		var c struct {
			IPAM struct {
				Type    string `json:"type"`
				Subnet  string `json:"subnet"`
				Gateway string `json:"gateway"`
				Ranges  [][]struct {
					Subnet  string `json:"subnet"`
					Gateway string `json:"gateway"`
				} `json:"ranges"`
			} `json:"ipam"`
		}
		if json.Unmarshal(p.Bytes, &c) != nil || c.IPAM.Type != "host-local" {
			continue
		}
		add := func(subnet, gw string) {
			pfx, err := netip.ParsePrefix(subnet)
			if err != nil {
				return
			}
			ic := ipamConfig{Subnet: pfx.Masked().String()}
			if gw != "" {
				ic.Gateway = gw
			} else if pfx.Addr().Is4() {
				ic.Gateway = pfx.Masked().Addr().Next().String() // host-local's default
			}
			out = append(out, ic)
		}
		if c.IPAM.Subnet != "" {
			add(c.IPAM.Subnet, c.IPAM.Gateway)
		}
		for _, set := range c.IPAM.Ranges {
			for _, r := range set {
				add(r.Subnet, r.Gateway)
			}
		}
	}
	return out
}

// hasCapability tells whether a plugin of list takes the runtime
// capability c.
func hasCapability(list *libcni.NetworkConfigList, c string) bool {
	return slices.ContainsFunc(list.Plugins, func(p *libcni.PluginConfig) bool { return p.Network.Capabilities[c] })
}

// ipamConfig is one subnet of a network, as the agent gets it.
type ipamConfig struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
	IPRange string `json:"ip_range,omitempty"`
}

// genOptions is what a generated network list is made of.
type genOptions struct {
	name     string // the CNI network name
	bridge   string
	ipam     []ipamConfig
	internal bool
	ipMasq   bool
	mtu      int
	dataDir  string // host-local's; "" for its default
}

// generate makes the network list of a network without a conflist: a
// bridge with the gateway addresses, host-local IPAM, a default route
// unless the network is internal.
func generate(o genOptions) ([]byte, error) {
	type rng struct {
		Subnet     string `json:"subnet"`
		Gateway    string `json:"gateway,omitempty"`
		RangeStart string `json:"rangeStart,omitempty"`
		RangeEnd   string `json:"rangeEnd,omitempty"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	var ranges [][]rng
	var routes []route
	for _, ic := range o.ipam {
		subnet, err := netip.ParsePrefix(ic.Subnet)
		if err != nil {
			return nil, err
		}
		r := rng{Subnet: ic.Subnet, Gateway: ic.Gateway}
		if ic.IPRange != "" {
			ipr, err := netip.ParsePrefix(ic.IPRange)
			if err != nil {
				return nil, err
			}
			first, last := ipr.Masked().Addr(), lastAddr(ipr)
			if first == subnet.Masked().Addr() {
				first = first.Next()
			}
			if subnet.Addr().Is4() && last == lastAddr(subnet) {
				last = last.Prev()
			}
			r.RangeStart, r.RangeEnd = first.String(), last.String()
		}
		ranges = append(ranges, []rng{r})
		if !o.internal {
			dst := "0.0.0.0/0"
			if subnet.Addr().Is6() {
				dst = "::/0"
			}
			routes = append(routes, route{Dst: dst})
		}
	}
	ipam := map[string]any{"type": "host-local", "ranges": ranges}
	if len(routes) > 0 {
		ipam["routes"] = routes
	}
	if o.dataDir != "" {
		ipam["dataDir"] = o.dataDir
	}
	bridge := map[string]any{
		"type":         "bridge",
		"bridge":       o.bridge,
		"isGateway":    true,
		"ipMasq":       o.ipMasq,
		"capabilities": map[string]bool{"ips": true, "mac": true},
		"ipam":         ipam,
	}
	if o.mtu > 0 {
		bridge["mtu"] = o.mtu
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": cniVersion,
		"name":       o.name,
		"plugins":    []any{bridge},
	}, "", "  ")
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// writeFile writes b to path through a temporary file.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
