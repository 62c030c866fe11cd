// Command moss-volume-example is an example third-party Moss volume
// plugin, written for plugin authors to read: a driver called "example"
// that keeps each volume as a directory on the host, built only on Moss's
// public plugin SDK (package plugins and the proto packages). See
// README.md for building, installing and using it.
package main

import "github.com/moss-containers/moss/plugins"

func main() {
	// Serve answers the agent over gRPC until the agent ends the plugin.
	// Logs written to plugins.Logger() appear in the agent's log.
	plugins.Serve(newDriver(plugins.Logger().Named("example")))
}
