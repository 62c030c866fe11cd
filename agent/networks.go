package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/moss-containers/moss/internal/atomicfile"
	"github.com/moss-containers/moss/plugins"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// Network is the agent's record of one network, persisted as
// networks/ID.json; the driver plugin keeps its own state (addresses,
// devices) for it.
type Network struct {
	network.Network
}

// predefined networks exist on every agent and cannot be removed: Docker's.
var predefined = []string{"bridge", "host", "none"}

func isPredefined(name string) bool {
	for _, p := range predefined {
		if p == name {
			return true
		}
	}
	return false
}

// networkRegistry holds the networks by ID and name.
type networkRegistry struct {
	mu     sync.Mutex
	byID   map[string]*Network
	byName map[string]string
	// creating serialises creations and removals, which call drivers.
	creating sync.Mutex
}

// loadNetworks reads the network records and adds the predefined ones
// that are missing. Drivers learn of them when they start (onPluginStart).
func (a *Agent) loadNetworks() error {
	a.nets = &networkRegistry{byID: map[string]*Network{}, byName: map[string]string{}}
	nets, err := loadRecords[Network](a, a.dirs.Networks(), "network", func(n *Network) bool { return true })
	if err != nil {
		return err
	}
	for _, n := range nets {
		a.nets.byID[n.ID] = n
		a.nets.byName[n.Name] = n.ID
	}
	for _, name := range predefined {
		if _, ok := a.nets.byName[name]; ok {
			continue
		}
		n := &Network{network.Network{
			Name: name, ID: newID(), Created: time.Now().UTC(), Scope: "local", Driver: name,
			EnableIPv4: name == "bridge", Options: map[string]string{}, Labels: map[string]string{},
			IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
		}}
		if name == "bridge" {
			n.Options["com.docker.network.bridge.default_bridge"] = "true"
			n.Options["com.docker.network.bridge.name"] = "moss0"
		}
		if err := a.saveNetwork(n); err != nil {
			return err
		}
		a.nets.byID[n.ID] = n
		a.nets.byName[n.Name] = n.ID
	}
	return nil
}

func (a *Agent) saveNetwork(n *Network) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(a.dirs.Networks(), n.ID+".json"), b)
}

// lookupNetwork finds a network by name, full ID or unique ID prefix.
func (a *Agent) lookupNetwork(ref string) (*Network, error) {
	r := a.nets
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.byName[ref]; ok {
		return r.byID[id], nil
	}
	if n, ok := r.byID[ref]; ok {
		return n, nil
	}
	var found *Network
	if ref != "" {
		for id, n := range r.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, kindErr(errInvalid, "network %s is ambiguous (%d matches found based on ID prefix)", ref, 2)
				}
				found = n
			}
		}
	}
	if found == nil {
		return nil, kindErr(errNotFound, "network %s not found", ref)
	}
	return found, nil
}

func (a *Agent) networkList() []*Network {
	a.nets.mu.Lock()
	defer a.nets.mu.Unlock()
	out := make([]*Network, 0, len(a.nets.byID))
	for _, n := range a.nets.byID {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// createRequest is what a driver is told of n.
func createRequest(n *Network) *networkv1.CreateNetworkRequest {
	req := &networkv1.CreateNetworkRequest{
		NetworkId: n.ID, Name: n.Name, Internal: n.Internal, Ipv6: n.EnableIPv6,
		Options: n.Options, Labels: n.Labels, Default: isPredefined(n.Name),
	}
	for _, c := range n.IPAM.Config {
		ic := &networkv1.IPAMConfig{}
		if c.Subnet.IsValid() {
			ic.Subnet = c.Subnet.String()
		}
		if c.Gateway.IsValid() {
			ic.Gateway = c.Gateway.String()
		}
		if c.IPRange.IsValid() {
			ic.IpRange = c.IPRange.String()
		}
		req.Ipam = append(req.Ipam, ic)
	}
	return req
}

// ipamFrom turns a driver's answer into Docker's IPAM configuration.
func ipamFrom(cfgs []*networkv1.IPAMConfig) ([]network.IPAMConfig, error) {
	out := []network.IPAMConfig{}
	for _, c := range cfgs {
		var ic network.IPAMConfig
		var err error
		if c.GetSubnet() != "" {
			if ic.Subnet, err = netip.ParsePrefix(c.GetSubnet()); err != nil {
				return nil, fmt.Errorf("driver returned subnet %q: %w", c.GetSubnet(), err)
			}
		}
		if c.GetGateway() != "" {
			if ic.Gateway, err = netip.ParseAddr(c.GetGateway()); err != nil {
				return nil, fmt.Errorf("driver returned gateway %q: %w", c.GetGateway(), err)
			}
		}
		if c.GetIpRange() != "" {
			if ic.IPRange, err = netip.ParsePrefix(c.GetIpRange()); err != nil {
				return nil, fmt.Errorf("driver returned ip range %q: %w", c.GetIpRange(), err)
			}
		}
		out = append(out, ic)
	}
	return out, nil
}

// onPluginStart runs after every start of a plugin: a network driver is
// told of every network it serves again (it keeps its state across
// restarts; CreateNetwork is idempotent).
func (a *Agent) onPluginStart(ctx context.Context, name string, driver any) error {
	d, ok := driver.(plugins.NetworkDriver)
	if !ok || a.nets == nil {
		return nil
	}
	for _, n := range a.networkList() {
		if n.Driver != name {
			continue
		}
		resp, err := d.CreateNetwork(ctx, createRequest(n))
		if err != nil {
			a.log.Error("network driver refused a known network", "network", n.Name, "driver", name, "error", err)
			continue
		}
		if len(n.IPAM.Config) == 0 && len(resp.GetIpam()) > 0 {
			cfg, err := ipamFrom(resp.GetIpam())
			if err != nil {
				return err
			}
			a.nets.mu.Lock()
			n.IPAM.Config = cfg
			a.nets.mu.Unlock()
			if err := a.saveNetwork(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// createNetwork makes a user-defined network.
func (a *Agent) createNetwork(ctx context.Context, req *network.CreateRequest) (*Network, error) {
	if req.Name == "" {
		return nil, kindErr(errInvalid, "network name is required")
	}
	if !validName.MatchString(req.Name) || strings.HasPrefix(req.Name, "/") {
		return nil, kindErr(errInvalid, "invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	if req.Driver == "" {
		req.Driver = "bridge"
	}
	if req.Scope != "" && req.Scope != "local" {
		return nil, kindErr(errInvalid, "scope %q is not supported: Moss networks are local", req.Scope)
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress {
		return nil, kindErr(errInvalid, "config-only, config-from and ingress networks are swarm features that Moss does not have")
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return nil, kindErr(errInvalid, "IPv4 cannot be disabled on Moss networks")
	}
	a.nets.creating.Lock()
	defer a.nets.creating.Unlock()
	if _, err := a.lookupNetwork(req.Name); err == nil {
		return nil, kindErr(errConflict, "network with name %s already exists", req.Name)
	}
	drv, err := a.plugins.Network(req.Driver)
	if err != nil {
		return nil, pluginErr(err)
	}
	caps, err := drv.Capabilities(ctx)
	if err != nil {
		return nil, pluginErr(err)
	}
	if !caps.GetUserNetworks() {
		return nil, kindErr(errForbidden, "only one instance of %q network is allowed", req.Driver)
	}
	n := &Network{network.Network{
		Name: req.Name, ID: newID(), Created: time.Now().UTC(), Scope: "local", Driver: req.Driver,
		EnableIPv4: true, Internal: req.Internal, Attachable: req.Attachable,
		Options: req.Options, Labels: req.Labels, IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
	}}
	if req.EnableIPv6 != nil {
		n.EnableIPv6 = *req.EnableIPv6
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return nil, kindErr(errInvalid, "IPAM driver %q is not supported: the network driver assigns addresses", req.IPAM.Driver)
		}
		n.IPAM.Options = req.IPAM.Options
		for _, c := range req.IPAM.Config {
			if !c.Subnet.IsValid() && (c.Gateway.IsValid() || c.IPRange.IsValid()) {
				return nil, kindErr(errInvalid, "a gateway or ip-range needs a subnet")
			}
			n.IPAM.Config = append(n.IPAM.Config, c)
		}
	}
	resp, err := drv.CreateNetwork(ctx, createRequest(n))
	if err != nil {
		return nil, pluginErr(err)
	}
	if n.IPAM.Config, err = ipamFrom(resp.GetIpam()); err != nil {
		_ = drv.DeleteNetwork(ctx, &networkv1.DeleteNetworkRequest{NetworkId: n.ID})
		return nil, err
	}
	if err := a.saveNetwork(n); err != nil {
		_ = drv.DeleteNetwork(ctx, &networkv1.DeleteNetworkRequest{NetworkId: n.ID})
		return nil, err
	}
	a.nets.mu.Lock()
	a.nets.byID[n.ID] = n
	a.nets.byName[n.Name] = n.ID
	a.nets.mu.Unlock()
	a.networkEvent(n, events.ActionCreate, nil)
	return n, nil
}

// networkUsers lists the containers that have n among their networks,
// running ones first.
func (a *Agent) networkUsers(n *Network) (running, stopped []*Container) {
	a.mu.Lock()
	cs := make([]*Container, 0, len(a.containers))
	for _, c := range a.containers {
		cs = append(cs, c)
	}
	a.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		_, on := c.Networks[n.Name]
		isRunning := c.State.Status == "running"
		c.mu.Unlock()
		if !on {
			continue
		}
		if isRunning {
			running = append(running, c)
		} else {
			stopped = append(stopped, c)
		}
	}
	return running, stopped
}

// removeNetwork deletes a user-defined network without active endpoints.
func (a *Agent) removeNetwork(ctx context.Context, n *Network) error {
	if isPredefined(n.Name) {
		return kindErr(errForbidden, "%s is a pre-defined network and cannot be removed", n.Name)
	}
	a.nets.creating.Lock()
	defer a.nets.creating.Unlock()
	if running, _ := a.networkUsers(n); len(running) > 0 {
		names := make([]string, 0, len(running))
		for _, c := range running {
			names = append(names, fmt.Sprintf("name:%q id:%q", c.Name, c.ID[:12]))
		}
		return kindErr(errForbidden, "error while removing network: network %s has active endpoints (%s)", n.Name, strings.Join(names, ", "))
	}
	drv, err := a.plugins.Network(n.Driver)
	if err != nil {
		return pluginErr(err)
	}
	if err := drv.DeleteNetwork(ctx, &networkv1.DeleteNetworkRequest{NetworkId: n.ID}); err != nil {
		return pluginErr(err)
	}
	if err := os.Remove(filepath.Join(a.dirs.Networks(), n.ID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	a.nets.mu.Lock()
	delete(a.nets.byID, n.ID)
	delete(a.nets.byName, n.Name)
	a.nets.mu.Unlock()
	a.networkEvent(n, events.ActionDestroy, nil)
	return nil
}

// pluginErr maps a plugin's error kinds to the API's.
func pluginErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, plugins.ErrNotFound):
		return kindErr(errNotFound, "%s", err.Error())
	case errors.Is(err, plugins.ErrExists):
		return kindErr(errForbidden, "%s", err.Error())
	case errors.Is(err, plugins.ErrInvalid), errors.Is(err, plugins.ErrUnsupported):
		return kindErr(errInvalid, "%s", err.Error())
	case errors.Is(err, plugins.ErrUnavailable):
		return kindErr(errUnavailable, "%s", err.Error())
	}
	return err
}

func (a *Agent) networkEvent(n *Network, action events.Action, extra map[string]string) {
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	a.emit(events.NetworkEventType, action, n.ID, attrs)
}
