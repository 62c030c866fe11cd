package plugins

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// ProtocolVersion is the version of the plugin protocol (proto/*/v1). The
// handshake refuses a plugin that speaks another.
const ProtocolVersion = 1

// Handshake keeps Moss plugins from being started by anything else and
// anything else from being taken for a Moss plugin.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "MOSS_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "b7f1c6a4-moss-plugin",
}

// pluginSet is what each side knows: the base service and the kinds.
func pluginSet(base Plugin, network NetworkDriver, volume VolumeDriver) plugin.PluginSet {
	set := plugin.PluginSet{"base": &grpcPlugin{base: base}}
	if network != nil || base == nil {
		set[KindNetwork] = &grpcPlugin{network: network}
	}
	if volume != nil || base == nil {
		set[KindVolume] = &grpcPlugin{volume: volume}
	}
	return set
}

// grpcPlugin is go-plugin's glue for one service: on the server side the
// implementation registers, on the client side a stub comes out.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	base    Plugin
	network NetworkDriver
	volume  VolumeDriver
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	switch {
	case p.base != nil:
		basev1.RegisterPluginServer(s, &baseServer{impl: p.base})
	case p.network != nil:
		networkv1.RegisterNetworkDriverServer(s, &networkServer{impl: p.network})
	case p.volume != nil:
		volumev1.RegisterVolumeDriverServer(s, &volumeServer{impl: p.volume})
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

type baseServer struct {
	basev1.UnimplementedPluginServer
	impl Plugin
}

func (s *baseServer) Info(ctx context.Context, _ *basev1.InfoRequest) (*basev1.InfoResponse, error) {
	r, err := s.impl.Info(ctx)
	return r, toStatus(err)
}

func (s *baseServer) Configure(ctx context.Context, req *basev1.ConfigureRequest) (*basev1.ConfigureResponse, error) {
	return &basev1.ConfigureResponse{}, toStatus(s.impl.Configure(ctx, req))
}

type networkServer struct {
	networkv1.UnimplementedNetworkDriverServer
	impl NetworkDriver
}

func (s *networkServer) Capabilities(ctx context.Context, _ *networkv1.CapabilitiesRequest) (*networkv1.CapabilitiesResponse, error) {
	r, err := s.impl.Capabilities(ctx)
	return r, toStatus(err)
}

func (s *networkServer) CreateNetwork(ctx context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	r, err := s.impl.CreateNetwork(ctx, req)
	return r, toStatus(err)
}

func (s *networkServer) DeleteNetwork(ctx context.Context, req *networkv1.DeleteNetworkRequest) (*networkv1.DeleteNetworkResponse, error) {
	return &networkv1.DeleteNetworkResponse{}, toStatus(s.impl.DeleteNetwork(ctx, req))
}

func (s *networkServer) Connect(ctx context.Context, req *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	r, err := s.impl.Connect(ctx, req)
	return r, toStatus(err)
}

func (s *networkServer) Disconnect(ctx context.Context, req *networkv1.DisconnectRequest) (*networkv1.DisconnectResponse, error) {
	return &networkv1.DisconnectResponse{}, toStatus(s.impl.Disconnect(ctx, req))
}

type volumeServer struct {
	volumev1.UnimplementedVolumeDriverServer
	impl VolumeDriver
}

func (s *volumeServer) Capabilities(ctx context.Context, _ *volumev1.CapabilitiesRequest) (*volumev1.CapabilitiesResponse, error) {
	r, err := s.impl.Capabilities(ctx)
	return r, toStatus(err)
}

func (s *volumeServer) Create(ctx context.Context, req *volumev1.CreateRequest) (*volumev1.CreateResponse, error) {
	v, err := s.impl.Create(ctx, req)
	return &volumev1.CreateResponse{Volume: v}, toStatus(err)
}

func (s *volumeServer) Remove(ctx context.Context, req *volumev1.RemoveRequest) (*volumev1.RemoveResponse, error) {
	return &volumev1.RemoveResponse{}, toStatus(s.impl.Remove(ctx, req))
}

func (s *volumeServer) Mount(ctx context.Context, req *volumev1.MountRequest) (*volumev1.MountResponse, error) {
	p, err := s.impl.Mount(ctx, req)
	return &volumev1.MountResponse{Path: p}, toStatus(err)
}

func (s *volumeServer) Unmount(ctx context.Context, req *volumev1.UnmountRequest) (*volumev1.UnmountResponse, error) {
	return &volumev1.UnmountResponse{}, toStatus(s.impl.Unmount(ctx, req))
}

func (s *volumeServer) Get(ctx context.Context, req *volumev1.GetRequest) (*volumev1.GetResponse, error) {
	v, err := s.impl.Get(ctx, req)
	return &volumev1.GetResponse{Volume: v}, toStatus(err)
}

func (s *volumeServer) List(ctx context.Context, _ *volumev1.ListRequest) (*volumev1.ListResponse, error) {
	vs, err := s.impl.List(ctx)
	return &volumev1.ListResponse{Volumes: vs}, toStatus(err)
}

// baseClient is the agent's side of the base service of one plugin.
type baseClient struct {
	name string
	c    basev1.PluginClient
}

func (b *baseClient) Info(ctx context.Context) (*basev1.InfoResponse, error) {
	r, err := b.c.Info(ctx, &basev1.InfoRequest{})
	return r, fromStatus(b.name, err)
}

func (b *baseClient) Configure(ctx context.Context, req *basev1.ConfigureRequest) error {
	_, err := b.c.Configure(ctx, req)
	return fromStatus(b.name, err)
}

// networkClient is the agent's side of a network plugin.
type networkClient struct {
	baseClient
	n networkv1.NetworkDriverClient
}

func newNetworkClient(name string, c *grpc.ClientConn) *networkClient {
	return &networkClient{baseClient{name, basev1.NewPluginClient(c)}, networkv1.NewNetworkDriverClient(c)}
}

func (n *networkClient) Capabilities(ctx context.Context) (*networkv1.CapabilitiesResponse, error) {
	r, err := n.n.Capabilities(ctx, &networkv1.CapabilitiesRequest{})
	return r, fromStatus(n.name, err)
}

func (n *networkClient) CreateNetwork(ctx context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	r, err := n.n.CreateNetwork(ctx, req)
	return r, fromStatus(n.name, err)
}

func (n *networkClient) DeleteNetwork(ctx context.Context, req *networkv1.DeleteNetworkRequest) error {
	_, err := n.n.DeleteNetwork(ctx, req)
	return fromStatus(n.name, err)
}

func (n *networkClient) Connect(ctx context.Context, req *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	r, err := n.n.Connect(ctx, req)
	return r, fromStatus(n.name, err)
}

func (n *networkClient) Disconnect(ctx context.Context, req *networkv1.DisconnectRequest) error {
	_, err := n.n.Disconnect(ctx, req)
	return fromStatus(n.name, err)
}

// volumeClient is the agent's side of a volume plugin.
type volumeClient struct {
	baseClient
	v volumev1.VolumeDriverClient
}

func newVolumeClient(name string, c *grpc.ClientConn) *volumeClient {
	return &volumeClient{baseClient{name, basev1.NewPluginClient(c)}, volumev1.NewVolumeDriverClient(c)}
}

func (v *volumeClient) Capabilities(ctx context.Context) (*volumev1.CapabilitiesResponse, error) {
	r, err := v.v.Capabilities(ctx, &volumev1.CapabilitiesRequest{})
	return r, fromStatus(v.name, err)
}

func (v *volumeClient) Create(ctx context.Context, req *volumev1.CreateRequest) (*volumev1.Volume, error) {
	r, err := v.v.Create(ctx, req)
	return r.GetVolume(), fromStatus(v.name, err)
}

func (v *volumeClient) Remove(ctx context.Context, req *volumev1.RemoveRequest) error {
	_, err := v.v.Remove(ctx, req)
	return fromStatus(v.name, err)
}

func (v *volumeClient) Mount(ctx context.Context, req *volumev1.MountRequest) (string, error) {
	r, err := v.v.Mount(ctx, req)
	return r.GetPath(), fromStatus(v.name, err)
}

func (v *volumeClient) Unmount(ctx context.Context, req *volumev1.UnmountRequest) error {
	_, err := v.v.Unmount(ctx, req)
	return fromStatus(v.name, err)
}

func (v *volumeClient) Get(ctx context.Context, req *volumev1.GetRequest) (*volumev1.Volume, error) {
	r, err := v.v.Get(ctx, req)
	return r.GetVolume(), fromStatus(v.name, err)
}

func (v *volumeClient) List(ctx context.Context) ([]*volumev1.Volume, error) {
	r, err := v.v.List(ctx, &volumev1.ListRequest{})
	return r.GetVolumes(), fromStatus(v.name, err)
}
