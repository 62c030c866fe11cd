// Package netdrivers holds Moss's built-in network drivers — bridge, host,
// none and container — and runs one of them as a plugin process. They are
// served exactly like a third-party plugin: the agent starts its own binary
// as `moss __plugin networkdriver NAME` through the plugin loader.
package netdrivers

import (
	"context"
	"fmt"
	"os"

	"github.com/moss-containers/moss/netdrivers/bridge"
	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// Version is the built-in drivers' version (the binary's, set by make build).
var Version = "dev"

// Builtin names the built-in network drivers.
var Builtin = []string{"bridge", "host", "none", "container"}

// Main runs the built-in driver args[0] (`moss __plugin networkdriver NAME`
// passes args = [NAME]) until the agent ends it.
func Main(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: moss __plugin networkdriver NAME")
		return 2
	}
	switch name := args[0]; name {
	case "bridge":
		plugins.Serve(bridge.New(Version, plugins.Logger()))
	case "host":
		plugins.Serve(&namespaceDriver{name: name, ns: networkv1.Namespace_NAMESPACE_HOST})
	case "none":
		plugins.Serve(&namespaceDriver{name: name, ns: networkv1.Namespace_NAMESPACE_NONE})
	case "container":
		plugins.Serve(&namespaceDriver{name: name, ns: networkv1.Namespace_NAMESPACE_CONTAINER})
	default:
		fmt.Fprintf(os.Stderr, "no built-in network driver %q\n", name)
		return 2
	}
	return 0
}

// namespaceDriver is a driver whose containers need nothing but a choice
// of network namespace: host (the host's), none (their own, with only lo)
// and container (another container's). The agent makes that choice from
// Capabilities; each driver has one network, the agent's default of its
// name.
type namespaceDriver struct {
	name string
	ns   networkv1.Namespace
}

func (d *namespaceDriver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: d.name, Kind: plugins.KindNetwork, Version: Version}, nil
}

func (d *namespaceDriver) Configure(context.Context, *basev1.ConfigureRequest) error { return nil }

func (d *namespaceDriver) Capabilities(context.Context) (*networkv1.CapabilitiesResponse, error) {
	return &networkv1.CapabilitiesResponse{Namespace: d.ns}, nil
}

func (d *namespaceDriver) CreateNetwork(_ context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	if !req.GetDefault() {
		return nil, plugins.Unsupported("only one instance of %q network is allowed", d.name)
	}
	if len(req.GetIpam()) > 0 {
		return nil, plugins.Invalid("network driver %q takes no subnet", d.name)
	}
	return &networkv1.CreateNetworkResponse{}, nil
}

func (d *namespaceDriver) DeleteNetwork(context.Context, *networkv1.DeleteNetworkRequest) error {
	return nil
}

func (d *namespaceDriver) Connect(context.Context, *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	return nil, plugins.Unsupported("network driver %q has no endpoints: its containers use the %s network namespace", d.name, d.name)
}

func (d *namespaceDriver) Disconnect(context.Context, *networkv1.DisconnectRequest) error {
	return nil
}
