package plugins

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

var logger = hclog.New(&hclog.LoggerOptions{
	Level:      hclog.Debug,
	Output:     os.Stderr,
	JSONFormat: true,
})

// Logger is the plugin's logger: JSON lines on stderr, which the agent
// re-emits in its own log under the plugin's name.
func Logger() hclog.Logger { return logger }

// Serve serves d, a NetworkDriver or a VolumeDriver, to the Moss agent that
// started this process, and returns when the agent ends the plugin. Run
// by hand, it prints what it is and exits with status 1.
func Serve(d Plugin) {
	var set plugin.PluginSet
	switch d := d.(type) {
	case NetworkDriver:
		set = pluginSet(d, d, nil)
	case VolumeDriver:
		set = pluginSet(d, nil, d)
	default:
		fmt.Fprintf(os.Stderr, "plugins.Serve: %T is neither a NetworkDriver nor a VolumeDriver\n", d)
		os.Exit(2)
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "This is a Moss plugin: the Moss agent starts it. Put it in a plugin directory (moss info lists them).")
		os.Exit(1)
	}
	// The agent may go away (it is restarted, or killed) while the plugin
	// serves on: writes to its log pipe then fail instead of killing us.
	signal.Ignore(syscall.SIGPIPE)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
}
