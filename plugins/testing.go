package plugins

import (
	"testing"

	"github.com/hashicorp/go-plugin"
)

// TestNetworkClient serves d over a real gRPC connection inside the test
// process and returns the agent's side of it, so that a driver's tests
// cross the same boundary (and error mapping) as in production.
func TestNetworkClient(t testing.TB, d NetworkDriver) NetworkDriver {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, pluginSet(d, d, nil))
	// Close asks the server to shut down (go-plugin's controller); a Stop
	// of our own would race with it.
	t.Cleanup(func() { client.Close(); _ = server })
	return newNetworkClient("test", client.Conn)
}

// TestVolumeClient is TestNetworkClient for volume drivers.
func TestVolumeClient(t testing.TB, d VolumeDriver) VolumeDriver {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, pluginSet(d, nil, d))
	t.Cleanup(func() { client.Close(); _ = server })
	return newVolumeClient("test", client.Conn)
}
