package agent

import (
	"context"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// The Docker API's network endpoints, and Moss's plugin list.

func (a *Agent) getNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	for k := range f {
		switch k {
		case "driver", "id", "name", "label", "type", "scope", "dangling":
		default:
			return kindErr(errInvalid, "invalid filter '%s'", k)
		}
	}
	out := []network.Summary{}
	for _, n := range a.networkList() {
		if !a.networkMatches(n, f) {
			continue
		}
		out = append(out, network.Summary{Network: n.Network})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *Agent) networkMatches(n *Network, f map[string][]string) bool {
	typ := "custom"
	if isPredefined(n.Name) {
		typ = "builtin"
	}
	dangling := func(v string) bool {
		running, stopped := a.networkUsers(n)
		unused := len(running)+len(stopped) == 0 && typ == "custom"
		return (v == "true" || v == "1") == unused
	}
	return anyOf(f["driver"], func(v string) bool { return n.Driver == v }) &&
		anyOf(f["id"], func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
		anyOf(f["name"], func(v string) bool { return strings.Contains(n.Name, v) }) &&
		anyOf(f["type"], func(v string) bool { return v == typ }) &&
		anyOf(f["scope"], func(v string) bool { return v == "local" }) &&
		anyOf(f["dangling"], dangling) &&
		matchLabels(f["label"], n.Labels)
}

func (a *Agent) getNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := a.lookupNetwork(r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.networkInspect(n))
	return nil
}

// networkInspect is docker network inspect's view: the network and the
// endpoints of its running containers.
func (a *Agent) networkInspect(n *Network) network.Inspect {
	in := network.Inspect{Network: n.Network, Containers: map[string]network.EndpointResource{}}
	running, _ := a.networkUsers(n)
	for _, c := range running {
		c.mu.Lock()
		if es := c.Networks[n.Name]; es != nil && es.EndpointID != "" {
			er := network.EndpointResource{Name: c.Name, EndpointID: es.EndpointID, MacAddress: es.MacAddress}
			if es.IPAddress.IsValid() {
				er.IPv4Address = netip.PrefixFrom(es.IPAddress, es.IPPrefixLen)
			}
			in.Containers[c.ID] = er
		}
		c.mu.Unlock()
	}
	return in
}

func (a *Agent) postNetworkCreate(w http.ResponseWriter, r *http.Request) error {
	var req network.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	n, err := a.createNetwork(r.Context(), &req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, network.CreateResponse{ID: n.ID})
	return nil
}

func (a *Agent) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := a.lookupNetwork(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.removeNetwork(r.Context(), n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Agent) postNetworksPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	deleted := []string{}
	for _, n := range a.networkList() {
		if isPredefined(n.Name) || !matchLabels(f["label"], n.Labels) {
			continue
		}
		if running, _ := a.networkUsers(n); len(running) > 0 {
			continue
		}
		if err := a.removeNetwork(r.Context(), n); err == nil {
			deleted = append(deleted, n.Name)
		} else {
			a.log.Warn("network prune", "network", n.Name, "error", err)
		}
	}
	sort.Strings(deleted)
	writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: deleted})
	return nil
}

func (a *Agent) postNetworkConnect(w http.ResponseWriter, r *http.Request) error {
	n, err := a.lookupNetwork(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req network.ConnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	c, err := a.lookup(req.Container)
	if err != nil {
		return err
	}
	es := &network.EndpointSettings{}
	if req.EndpointConfig != nil {
		es = req.EndpointConfig
	}
	if err := a.connectNetwork(r.Context(), c, n, es); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *Agent) postNetworkDisconnect(w http.ResponseWriter, r *http.Request) error {
	n, err := a.lookupNetwork(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req network.DisconnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	c, err := a.lookup(req.Container)
	if err != nil {
		return err
	}
	if err := a.disconnectNetwork(r.Context(), c, n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// connectNetwork adds n to c's networks, and connects it at once when it
// runs in a namespace of its own.
func (a *Agent) connectNetwork(ctx context.Context, c *Container, n *Network, es *network.EndpointSettings) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := string(c.HostConfig.NetworkMode)
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") || n.Name == "host" || n.Name == "none" {
		return kindErr(errForbidden, "container cannot be disconnected from host network or connected to host network")
	}
	if _, ok := c.Networks[n.Name]; ok {
		return kindErr(errForbidden, "endpoint with name %s already exists in network %s", c.Name, n.Name)
	}
	e, err := a.endpointConfig(n, es)
	if err != nil {
		return err
	}
	if c.State.Status == "running" && c.NetNS != "" {
		if _, err := a.connect(ctx, c, n.Name, e, nextInterface(c)); err != nil {
			return err
		}
	}
	if c.Networks == nil {
		c.Networks = map[string]*network.EndpointSettings{}
	}
	c.Networks[n.Name] = e
	if err := a.save(c); err != nil {
		return err
	}
	a.networkEvent(n, events.ActionConnect, map[string]string{"container": c.ID})
	return nil
}

// nextInterface is the first ethN that none of c's endpoints uses.
// Callers hold c.mu.
func nextInterface(c *Container) string {
	for i := 0; ; i++ {
		name := "eth" + strconv.Itoa(i)
		used := false
		for _, v := range c.Interfaces {
			used = used || v == name
		}
		if !used {
			return name
		}
	}
}

// disconnectNetwork removes n from c's networks.
func (a *Agent) disconnectNetwork(ctx context.Context, c *Container, n *Network) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	es, ok := c.Networks[n.Name]
	if !ok {
		return kindErr(errForbidden, "container %s is not connected to network %s", c.ID[:12], n.Name)
	}
	if n.Name == "host" || n.Name == "none" {
		return kindErr(errForbidden, "container cannot be disconnected from host network or connected to host network")
	}
	a.disconnect(ctx, c, n.Name, es)
	delete(c.Networks, n.Name)
	if err := a.save(c); err != nil {
		return err
	}
	a.networkEvent(n, events.ActionDisconnect, map[string]string{"container": c.ID})
	return nil
}

func (a *Agent) getPlugins(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.plugins.List())
	return nil
}
