package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moss-containers/moss/internal/atomicfile"
)

// stateVersion is the version of the driver's state files.
const stateVersion = 1

// network is one network as the driver keeps it. Its file is
// StateDir/networks/ID.json, written with fsync: a network outlives
// reboots.
type network struct {
	Version  int    `json:"version"`
	ID       string `json:"id"`
	Name     string `json:"name"`
	Bridge   string `json:"bridge"`
	Subnet   string `json:"subnet"`
	Gateway  string `json:"gateway"`
	IPRange  string `json:"ip_range,omitempty"`
	Internal bool   `json:"internal,omitempty"`
	Default  bool   `json:"default,omitempty"`
	MTU      int    `json:"mtu"`

	// In memory only.
	Endpoints   map[string]*endpoint `json:"-"`
	ipam        ipam
	last        netip.Addr                   // handed out last: allocation goes on after it
	used        map[netip.Addr]bool          // endpoints' addresses
	releasing   map[netip.Addr]chan struct{} // of endpoints whose veth is being deleted
	bridgeIndex int                          // of the bridge device, 0 if not known
	dns         *dnsServer
}

// endpoint is one container's interface on a network. Its file is
// RunDir/endpoints/NETWORK/ENDPOINT.json: an endpoint lives as long as its
// container's namespace, which does not survive a reboot either — and a
// file on tmpfs costs a Connect a tenth of one on disk. It survives
// plugin and agent restarts.
type endpoint struct {
	Version       int      `json:"version"`
	ID            string   `json:"id"`
	ContainerID   string   `json:"container_id,omitempty"`
	ContainerName string   `json:"container_name,omitempty"`
	Aliases       []string `json:"aliases,omitempty"`
	Address       string   `json:"address"` // without prefix length
	MAC           string   `json:"mac"`
	NetnsPath     string   `json:"netns_path"`
	Interface     string   `json:"interface"` // in the container
	HostVeth      string   `json:"host_veth"` // in the bridge netns
	// DefaultRoute: the container's default route is this network's.
	DefaultRoute bool `json:"default_route,omitempty"`
	// Created orders endpoints: the newest one's address is where
	// allocation goes on after a restart.
	Created int64 `json:"created"`

	addr netip.Addr
}

// init derives the in-memory fields of a network read or planned.
func (n *network) init() error {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return fmt.Errorf("subnet: %w", err)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	n.ipam = ipam{Subnet: subnet, Gateway: gw, Range: subnet}
	if n.IPRange != "" {
		if n.ipam.Range, err = netip.ParsePrefix(n.IPRange); err != nil {
			return fmt.Errorf("ip range: %w", err)
		}
	}
	n.Endpoints = map[string]*endpoint{}
	n.used = map[netip.Addr]bool{}
	n.releasing = map[netip.Addr]chan struct{}{}
	return nil
}

func (n *network) addEndpoint(ep *endpoint) {
	n.Endpoints[ep.ID] = ep
	n.used[ep.addr] = true
	n.last = ep.addr
}

func (n *network) removeEndpoint(ep *endpoint) {
	delete(n.Endpoints, ep.ID)
	delete(n.used, ep.addr)
}

// taken reports whether addr may not be handed out: an endpoint has it,
// or had it and its veth is still being deleted.
func (n *network) taken(addr netip.Addr) bool {
	if n.used[addr] {
		return true
	}
	if ch, ok := n.releasing[addr]; ok {
		select {
		case <-ch:
			delete(n.releasing, addr)
		default:
			return true
		}
	}
	return false
}

// store is where the driver keeps its state.
type store struct {
	nets string // StateDir/networks
	eps  string // RunDir/endpoints
}

func newStore(stateDir, runDir string) store {
	if runDir == "" {
		runDir = filepath.Join(stateDir, "run")
	}
	return store{nets: filepath.Join(stateDir, "networks"), eps: filepath.Join(runDir, "endpoints")}
}

func (s store) saveNetwork(n *network) error {
	n.Version = stateVersion
	data, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.nets, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.nets, n.ID+".json"), data); err != nil {
		return fmt.Errorf("save network %q: %w", n.Name, err)
	}
	return nil
}

func (s store) saveEndpoint(n *network, ep *endpoint) error {
	ep.Version = stateVersion
	data, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.eps, n.ID)
	err = atomicfile.WriteUnsynced(filepath.Join(dir, ep.ID+".json"), data)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			err = atomicfile.WriteUnsynced(filepath.Join(dir, ep.ID+".json"), data)
		}
	}
	if err != nil {
		return fmt.Errorf("save endpoint %s: %w", ep.ID, err)
	}
	return nil
}

func (s store) removeEndpoint(n *network, ep *endpoint) error {
	err := os.Remove(filepath.Join(s.eps, n.ID, ep.ID+".json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove endpoint %s: %w", ep.ID, err)
	}
	return nil
}

func (s store) removeNetwork(n *network) error {
	if err := os.RemoveAll(filepath.Join(s.eps, n.ID)); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(s.nets, n.ID+".json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network %q: %w", n.Name, err)
	}
	return nil
}

// load reads every network and its endpoints. A file that cannot be read
// is an error: the driver must not hand out what it may have handed out
// before.
func (s store) load() (map[string]*network, error) {
	nets := map[string]*network{}
	err := readDir(s.nets, func(path string, data []byte) error {
		n := &network{}
		if err := json.Unmarshal(data, n); err != nil {
			return err
		}
		if n.Version != stateVersion {
			return fmt.Errorf("version %d, this driver reads %d", n.Version, stateVersion)
		}
		if err := n.init(); err != nil {
			return err
		}
		nets[n.ID] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		var newest int64
		err := readDir(filepath.Join(s.eps, n.ID), func(path string, data []byte) error {
			ep := &endpoint{}
			if err := json.Unmarshal(data, ep); err != nil {
				return err
			}
			if ep.Version != stateVersion {
				return fmt.Errorf("version %d, this driver reads %d", ep.Version, stateVersion)
			}
			var err error
			if ep.addr, err = netip.ParseAddr(ep.Address); err != nil {
				return err
			}
			n.Endpoints[ep.ID] = ep
			n.used[ep.addr] = true
			if ep.Created >= newest {
				newest, n.last = ep.Created, ep.addr
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return nets, nil
}

// readDir calls fn for each *.json file of dir; a missing dir is empty.
// Other files are temporary ones of an interrupted write.
func readDir(dir string, fn func(path string, data []byte) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := fn(p, data); err != nil {
			return fmt.Errorf("state file %s: %w", p, err)
		}
	}
	return nil
}

func now() int64 { return time.Now().UnixNano() }
