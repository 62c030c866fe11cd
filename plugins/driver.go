package plugins

import (
	"context"

	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// Kinds of plugins.
const (
	KindNetwork = "network"
	KindVolume  = "volume"
)

// Plugin is what every plugin implements, whatever its kind.
type Plugin interface {
	// Info names the plugin: Name is the driver name users give, Kind is
	// KindNetwork or KindVolume, Version the plugin's own.
	Info(ctx context.Context) (*basev1.InfoResponse, error)
	// Configure is called after each start of the plugin process, before any
	// other call but Info. StateDir persists across restarts: a plugin
	// that was killed finds there what it had set up and must carry on
	// with it (networks, addresses handed out, volumes).
	Configure(ctx context.Context, req *basev1.ConfigureRequest) error
}

// NetworkDriver is a network plugin's driver. Calls may come concurrently.
// Errors should be made by NotFound, Exists, Invalid or Unsupported where
// one of those kinds applies: the agent maps them to the API's status codes.
type NetworkDriver interface {
	Plugin
	// Capabilities says which network namespace containers get and what
	// the driver does. The agent asks once per plugin start.
	Capabilities(ctx context.Context) (*networkv1.CapabilitiesResponse, error)
	// CreateNetwork sets up a network and returns its addressing. It must
	// be idempotent for the same network_id: after a plugin restart the
	// agent calls it again for every network it knows. Overlapping subnets
	// of two networks are Exists errors; malformed ones Invalid.
	CreateNetwork(ctx context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error)
	// DeleteNetwork tears a network down. An unknown network is not an error.
	// The agent calls it only for networks without endpoints.
	DeleteNetwork(ctx context.Context, req *networkv1.DeleteNetworkRequest) error
	// Connect puts an interface into the network namespace at NetnsPath and
	// returns its addresses, routes and DNS settings. A requested address
	// that is taken is an Exists error; outside the network, Invalid.
	// A Connect for an endpoint_id that is already connected returns its
	// existing configuration (after updating its aliases).
	Connect(ctx context.Context, req *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error)
	// Disconnect removes the endpoint and releases what it held. The
	// namespace may already be gone. An unknown endpoint is not an error.
	Disconnect(ctx context.Context, req *networkv1.DisconnectRequest) error
}

// VolumeDriver is a volume plugin's driver. Calls may come concurrently.
type VolumeDriver interface {
	Plugin
	Capabilities(ctx context.Context) (*volumev1.CapabilitiesResponse, error)
	// Create makes a volume; an existing volume is returned as it is.
	Create(ctx context.Context, req *volumev1.CreateRequest) (*volumev1.Volume, error)
	// Remove deletes a volume; an unknown one is a NotFound error.
	Remove(ctx context.Context, req *volumev1.RemoveRequest) error
	// Mount makes the volume available and returns its host path. Mounts
	// are counted by MountId.
	Mount(ctx context.Context, req *volumev1.MountRequest) (string, error)
	// Unmount releases one Mount.
	Unmount(ctx context.Context, req *volumev1.UnmountRequest) error
	Get(ctx context.Context, req *volumev1.GetRequest) (*volumev1.Volume, error)
	List(ctx context.Context) ([]*volumev1.Volume, error)
}
