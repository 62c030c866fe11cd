package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Flag values that check their argument when it is parsed, as docker's
// opts do: a bad value is a flag error (exit 125, docker's "invalid
// argument … for … flag" message from pflag).

// listOpt is a repeatable string flag, each value checked (and possibly
// normalized) by validate; docker's ListOpts.
type listOpt struct {
	vals     []string
	validate func(string) (string, error)
}

func (l *listOpt) Set(v string) error {
	if l.validate != nil {
		var err error
		if v, err = l.validate(v); err != nil {
			return err
		}
	}
	l.vals = append(l.vals, v)
	return nil
}

func (l *listOpt) String() string { return "" }
func (l *listOpt) Type() string   { return "list" }

// mapOpt is a repeatable key=value flag, a value without "=" an empty one;
// docker's MapOpts.
type mapOpt struct{ m map[string]string }

func (o *mapOpt) Set(v string) error {
	k, val, _ := strings.Cut(v, "=")
	if o.m == nil {
		o.m = map[string]string{}
	}
	o.m[k] = val
	return nil
}

func (o *mapOpt) String() string { return "" }
func (o *mapOpt) Type() string   { return "map" }

// all is the map, never nil (docker sends {} for no options).
func (o *mapOpt) all() map[string]string {
	if o.m == nil {
		return map[string]string{}
	}
	return o.m
}

// filterOpt is docker's FilterOpt: repeatable name=value filters.
type filterOpt struct{ vals []string }

func (f *filterOpt) Set(v string) error {
	name, val, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("bad format of filter (expected name=value)")
	}
	f.vals = append(f.vals, strings.TrimSpace(name)+"="+strings.TrimSpace(val))
	return nil
}

func (f *filterOpt) String() string { return "" }
func (f *filterOpt) Type() string   { return "filter" }

// ipOpt is an IP address flag (--ip, --ip6): family 4 or 6 restricts it.
type ipOpt struct {
	addr   netip.Addr
	family int
}

func (o *ipOpt) Set(v string) error {
	if v == "" {
		o.addr = netip.Addr{}
		return nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("failed to parse IP: %q", v)
	}
	switch {
	case o.family == 4 && !a.Unmap().Is4():
		return fmt.Errorf("invalid IPv4 address: %s", v)
	case o.family == 6 && (!a.Is6() || a.Is4In6()):
		return fmt.Errorf("invalid IPv6 address: %s", v)
	}
	if o.family == 4 {
		a = a.Unmap()
	}
	o.addr = a
	return nil
}

func (o *ipOpt) String() string {
	if !o.addr.IsValid() {
		return ""
	}
	return o.addr.String()
}

func (o *ipOpt) Type() string { return "ip" }

// validateLabel is docker's ValidateLabel: a key that is not empty and has
// no whitespace, an optional value.
func validateLabel(v string) (string, error) {
	key, _, _ := strings.Cut(v, "=")
	key = strings.TrimLeft(key, " \t")
	if key == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", v)
	}
	if strings.ContainsAny(key, " \t") {
		return "", fmt.Errorf("label '%s' contains whitespaces", key)
	}
	return v, nil
}

// labelMap turns KEY[=VALUE] entries into a map, never nil.
func labelMap(list []string) map[string]string {
	m := map[string]string{}
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// hostGateway is the special address of --add-host that the agent resolves
// to the host as the container reaches it.
const hostGateway = "host-gateway"

// validateExtraHost is docker's ValidateExtraHost: NAME:IP or NAME=IP (the
// IP possibly in brackets, or host-gateway), returned as NAME:IP.
func validateExtraHost(v string) (string, error) {
	k, ip, ok := strings.Cut(v, "=")
	if !ok {
		// An IPv6 address has colons: split at the first one only.
		k, ip, ok = strings.Cut(v, ":")
	}
	if !ok || k == "" || strings.Contains(k, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", v)
	}
	for _, name := range strings.Split(k, ";") {
		if name == "" {
			return "", fmt.Errorf("hostname in add-host %q is empty", v)
		}
	}
	if ip != hostGateway {
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if _, err := netip.ParseAddr(strings.TrimSpace(ip)); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return k + ":" + ip, nil
}

// netAttach is one --network value: a network and, in docker's long syntax
// (name=NET,alias=A,ip=IP,ip6=IP,driver-opt=K=V), its endpoint's options.
type netAttach struct {
	target     string
	aliases    []string
	ipv4, ipv6 netip.Addr
	driverOpts map[string]string
}

// networkOpt is --network/--net, repeatable like docker's NetworkOpt.
type networkOpt struct{ list []netAttach }

var longNetworkSyntax = regexp.MustCompile(`\w+=\w+(,\w+=\w+)*`)

func (n *networkOpt) Set(value string) error {
	if !longNetworkSyntax.MatchString(value) {
		n.list = append(n.list, netAttach{target: value})
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	var att netAttach
	for _, field := range fields {
		key, val, ok := strings.Cut(field, "=")
		if !ok || key == "" {
			return fmt.Errorf("invalid field %s", field)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "name":
			att.target = val
		case "alias":
			att.aliases = append(att.aliases, val)
		case "ip", "ip6":
			o := ipOpt{family: 4}
			if key == "ip6" {
				o.family = 6
			}
			if err := o.Set(val); err != nil {
				return err
			}
			if key == "ip" {
				att.ipv4 = o.addr
			} else {
				att.ipv6 = o.addr
			}
		case "driver-opt":
			k, v, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return errors.New("invalid key value pair format in driver options")
			}
			if att.driverOpts == nil {
				att.driverOpts = map[string]string{}
			}
			att.driverOpts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		default:
			return fmt.Errorf("invalid field key %s", key)
		}
	}
	if att.target == "" {
		return errors.New("network name/id is not specified")
	}
	n.list = append(n.list, att)
	return nil
}

func (n *networkOpt) String() string { return "" }
func (n *networkOpt) Type() string   { return "network" }

// userDefined tells whether a network mode names a network (not none, host,
// bridge, default or container:NAME).
func userDefined(mode string) bool {
	return mode != "" && container.NetworkMode(mode).IsUserDefined()
}

// endpoint is the endpoint configuration of one attachment; aliases need a
// user-defined network, as in docker.
func (n netAttach) endpoint() (*network.EndpointSettings, error) {
	if strings.TrimSpace(n.target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !userDefined(n.target) && len(n.aliases) > 0 {
		return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
	}
	ep := &network.EndpointSettings{}
	ep.Aliases = append(ep.Aliases, n.aliases...)
	if len(n.driverOpts) > 0 {
		ep.DriverOpts = n.driverOpts
	}
	if n.ipv4.IsValid() || n.ipv6.IsValid() {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.ipv4, IPv6Address: n.ipv6}
	}
	return ep, nil
}
