// Package plugins is Moss's plugin system: the driver interfaces that
// network and volume plugins implement, the go-plugin glue that carries
// them over gRPC between processes, Serve for plugin authors, and the
// loader with which the agent starts, watches and restarts them.
//
// A plugin is an executable. Moss starts it with the go-plugin handshake in
// its environment; the plugin calls Serve with its driver and serves until
// the agent ends it. Built-in drivers are the same: the agent starts its own
// binary as `moss __plugin netdriver NAME`, through the same code path as a
// third-party executable found in a plugin directory.
//
// A minimal network plugin:
//
//	func main() {
//		plugins.Serve(&myDriver{})
//	}
//
// where myDriver implements Plugin and NetworkDriver. Logs written to
// plugins.Logger() appear in the agent's log under the plugin's name.
package plugins
