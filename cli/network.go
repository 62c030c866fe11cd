package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// addNetworkCommands registers `moss network` (create, ls, inspect, rm,
// prune, connect, disconnect), docker's verbs on the agent's
// /networks endpoints.
func (a *app) addNetworkCommands(root *cobra.Command) {
	grp := group("network", "Manage networks")
	grp.AddCommand(a.networkCreateCmd(), a.networkLsCmd(), a.networkInspectCmd(), a.networkRmCmd(),
		a.networkPruneCmd(), a.networkConnectCmd(), a.networkDisconnectCmd())
	root.AddCommand(grp)
}

// networkCreateOptions are the flags of network create.
type networkCreateOptions struct {
	driver, ipamDriver         string
	internal, ipv4, ipv6       bool
	subnets, ipRanges, gateway []string
	labels                     listOpt
	opts, ipamOpts, auxAddrs   mapOpt
}

func (a *app) networkCreateCmd() *cobra.Command {
	o := &networkCreateOptions{labels: listOpt{validate: validateLabel}}
	c := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(args[0], cmd)
			if err != nil {
				return &statusError{code: exitFailure, msg: err.Error()}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			var resp network.CreateResponse
			if err := cl.call(http.MethodPost, "/networks/create", nil, req, &resp); err != nil {
				return err
			}
			fmt.Fprintln(a.out, resp.ID)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&o.driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.VarP(&o.opts, "opt", "o", "Set driver specific options")
	f.Var(&o.labels, "label", "Set metadata on a network")
	f.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&o.ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&o.ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.StringVar(&o.ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	f.StringSliceVar(&o.subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	f.StringSliceVar(&o.ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	f.StringSliceVar(&o.gateway, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	f.Var(&o.auxAddrs, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	f.Var(&o.ipamOpts, "ipam-opt", "Set IPAM driver specific options")
	return c
}

// request builds the create request; like docker it checks the IPAM flags
// against each other before anything is sent.
func (o *networkCreateOptions) request(name string, cmd *cobra.Command) (*network.CreateRequest, error) {
	ipam, err := o.ipam()
	if err != nil {
		return nil, err
	}
	req := &network.CreateRequest{
		Name: name, Driver: o.driver, IPAM: ipam, Internal: o.internal,
		Options: o.opts.all(), Labels: labelMap(o.labels.vals),
	}
	if cmd.Flags().Changed("ipv4") {
		v := o.ipv4
		req.EnableIPv4 = &v
	}
	if cmd.Flags().Changed("ipv6") {
		v := o.ipv6
		req.EnableIPv6 = &v
	}
	return req, nil
}

// ipam consolidates --subnet, --ip-range, --gateway and --aux-address into
// one IPAM configuration per subnet, with docker's checks and messages
// (cli/command/network/create.go): every range, gateway and auxiliary
// address must fall in exactly one subnet, and subnets must not overlap.
func (o *networkCreateOptions) ipam() (*network.IPAM, error) {
	if len(o.subnets) < len(o.ipRanges) || len(o.subnets) < len(o.gateway) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	configs := make([]network.IPAMConfig, 0, len(o.subnets))
	index := map[string]int{}
	for _, s := range o.subnets {
		for k := range index {
			ok1, err := subnetMatches(s, k)
			if err != nil {
				return nil, err
			}
			ok2, err := subnetMatches(k, s)
			if err != nil {
				return nil, err
			}
			if ok1 || ok2 {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		p, err := parseSubnet(s)
		if err != nil {
			return nil, err
		}
		index[s] = len(configs)
		configs = append(configs, network.IPAMConfig{Subnet: p})
	}
	for _, r := range o.ipRanges {
		if _, _, err := net.ParseCIDR(r); err != nil {
			return nil, err
		}
		match := false
		for _, s := range o.subnets {
			ok, err := subnetMatches(s, r)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			c := &configs[index[s]]
			if c.IPRange.IsValid() {
				return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, c.IPRange, s)
			}
			if c.IPRange, err = netip.ParsePrefix(r); err != nil {
				return nil, fmt.Errorf("invalid CIDR address: %s", r)
			}
			match = true
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		}
	}
	for _, g := range o.gateway {
		match := false
		for _, s := range o.subnets {
			ok, err := subnetMatches(s, g)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			c := &configs[index[s]]
			if c.Gateway.IsValid() {
				return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, c.Gateway, s)
			}
			if c.Gateway, err = netip.ParseAddr(g); err != nil {
				return nil, fmt.Errorf("invalid gateway %s: invalid address", g)
			}
			match = true
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		}
	}
	aux := make([]string, 0, len(o.auxAddrs.m))
	for k := range o.auxAddrs.m {
		aux = append(aux, k)
	}
	sort.Strings(aux)
	for _, key := range aux {
		v := o.auxAddrs.m[key]
		addr, err := netip.ParseAddr(v)
		if err != nil {
			return nil, err
		}
		match := false
		for _, s := range o.subnets {
			ok, err := subnetMatches(s, v)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			c := &configs[index[s]]
			if c.AuxAddress == nil {
				c.AuxAddress = map[string]netip.Addr{}
			}
			c.AuxAddress[key] = addr
			match = true
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for aux-address %s", v)
		}
	}
	return &network.IPAM{Driver: o.ipamDriver, Options: o.ipamOpts.all(), Config: configs}, nil
}

// subnetMatches is docker's: whether the address or the first address of
// the CIDR data lies in subnet.
func subnetMatches(subnet, data string) (bool, error) {
	_, s, err := net.ParseCIDR(subnet)
	if err != nil {
		return false, fmt.Errorf("invalid subnet: %w", err)
	}
	var ip net.IP
	if strings.Contains(data, "/") {
		if ip, _, err = net.ParseCIDR(data); err != nil {
			return false, err
		}
	} else {
		ip = net.ParseIP(data)
	}
	return s.Contains(ip), nil
}

// parseSubnet reads a --subnet: CIDR notation, or an address alone as a
// subnet of that one address (as docker does since the API has typed
// prefixes). Docker's daemon words the refusal this way.
func parseSubnet(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("invalid subnet %s: invalid CIDR block notation", s)
}

// network ls

const networkTable = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

var networkHeaders = map[string]string{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
	"Internal": "INTERNAL", "Labels": "LABELS", "Label": "LABEL", "CreatedAt": "CREATED AT",
}

func (a *app) networkLsCmd() *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters filterOpt
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			var list []network.Summary
			if err := cl.call(http.MethodGet, "/networks", filterQuery(filters.vals), nil, &list); err != nil {
				return err
			}
			sort.SliceStable(list, func(i, j int) bool { return naturalLess(list[i].Name, list[j].Name) })
			f := format
			if quiet && (f == "" || f == "table") {
				f = "{{.ID}}"
			}
			rows := make([]interface{}, 0, len(list))
			for _, n := range list {
				rows = append(rows, networkRow{n: n, trunc: !noTrunc})
			}
			return render(a.out, listFormat(f, networkTable), rows, networkHeaders)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	c.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	c.Flags().VarP(&filters, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	return c
}

// networkRow is one network as docker's network ls templates see it.
type networkRow struct {
	n     network.Summary
	trunc bool
}

func (r networkRow) ID() string {
	if r.trunc {
		return shortID(r.n.ID)
	}
	return r.n.ID
}

func (r networkRow) Name() string      { return r.n.Name }
func (r networkRow) Driver() string    { return r.n.Driver }
func (r networkRow) Scope() string     { return r.n.Scope }
func (r networkRow) IPv4() string      { return strconv.FormatBool(r.n.EnableIPv4) }
func (r networkRow) IPv6() string      { return strconv.FormatBool(r.n.EnableIPv6) }
func (r networkRow) Internal() string  { return strconv.FormatBool(r.n.Internal) }
func (r networkRow) CreatedAt() string { return r.n.Created.String() }

func (r networkRow) Labels() string {
	return joinLabels(r.n.Labels)
}

// Label is the value of one label: {{.Label "com.example.key"}}.
func (r networkRow) Label(k string) string { return r.n.Labels[k] }

// MarshalJSON gives `--format json` docker's field names.
func (r networkRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": r.ID(), "Name": r.Name(), "Driver": r.Driver(), "Scope": r.Scope(), "IPv4": r.IPv4(),
		"IPv6": r.IPv6(), "Internal": r.Internal(), "Labels": r.Labels(), "CreatedAt": r.CreatedAt(),
	})
}

// network inspect

func (a *app) networkInspectCmd() *cobra.Command {
	var format string
	var verbose bool
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if verbose {
				q.Set("verbose", "true")
			}
			return a.inspectEach(format, args, func(name string) string { return "/networks/" + url.PathEscape(name) }, q)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return c
}

// network rm

func (a *app) networkRmCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			err = a.eachArg(args, func(name string) error {
				if err := cl.call(http.MethodDelete, "/networks/"+url.PathEscape(name), nil, nil, nil); err != nil {
					if force && isNotFound(err) {
						return nil
					}
					return err
				}
				fmt.Fprintln(a.out, name)
				return nil
			})
			var se *statusError
			if errors.As(err, &se) && se.msg == "" {
				// docker network rm ends its failures so.
				return &statusError{code: se.code, msg: "exit status " + strconv.Itoa(se.code)}
			}
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return c
}

// network prune

func (a *app) networkPruneCmd() *cobra.Command {
	var force bool
	var filters filterOpt
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !a.confirm("WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			var resp network.PruneReport
			if err := cl.call(http.MethodPost, "/networks/prune", filterQuery(filters.vals), nil, &resp); err != nil {
				return err
			}
			if len(resp.NetworksDeleted) > 0 {
				fmt.Fprintln(a.out, "Deleted Networks:")
				for _, n := range resp.NetworksDeleted {
					fmt.Fprintln(a.out, n)
				}
				fmt.Fprintln(a.out)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return c
}

// network connect and disconnect

func (a *app) networkConnectCmd() *cobra.Command {
	var aliases, driverOpts []string
	ip, ip6 := ipOpt{family: 4}, ipOpt{family: 6}
	var gwPriority int
	c := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ep := &network.EndpointSettings{
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip.addr, IPv6Address: ip6.addr},
				Aliases:    aliases, GwPriority: gwPriority,
			}
			for _, kv := range driverOpts {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &statusError{code: exitFailure, msg: "invalid key value pair format in driver options"}
				}
				if ep.DriverOpts == nil {
					ep.DriverOpts = map[string]string{}
				}
				ep.DriverOpts[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			return cl.call(http.MethodPost, "/networks/"+url.PathEscape(args[0])+"/connect", nil,
				network.ConnectRequest{Container: args[1], EndpointConfig: ep}, nil)
		},
	}
	f := c.Flags()
	f.StringSliceVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	f.Var(&ip, "ip", `IPv4 address (e.g., "172.30.100.104")`)
	f.Var(&ip6, "ip6", `IPv6 address (e.g., "2001:db8::33")`)
	f.StringSliceVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	f.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return c
}

func (a *app) networkDisconnectCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			return cl.call(http.MethodPost, "/networks/"+url.PathEscape(args[0])+"/disconnect", nil,
				network.DisconnectRequest{Container: args[1], Force: force}, nil)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return c
}
