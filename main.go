//go:build !moss_front

// Command moss is a rootless, single-binary container agent. One binary plays
// several roles: hidden roles (libcontainer's init, the per-container shim,
// the namespace holder, ID-mapping helpers, containers/storage re-exec
// helpers) are dispatched first, then the CLI.
//
// This is the full binary. `make build` packs it into the light front
// binary (main_front.go, build tag moss_front), which is bin/moss; built
// alone (`go build .`) it runs every role itself.
package main

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"go.podman.io/storage/pkg/reexec"

	"github.com/moss-containers/moss/agent"
	"github.com/moss-containers/moss/agent/rootless"
	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/cli"
	"github.com/moss-containers/moss/contrib/dockervolume"
	_ "github.com/moss-containers/moss/internal/mossinit"
	_ "github.com/moss-containers/moss/internal/nsjoin"
	"github.com/moss-containers/moss/netdrivers"
	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/storage/localvol"
)

func main() {
	// libcontainer re-executes the binary as "init" with its pipes in the
	// environment; nsenter's constructor has already run by now.
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != "" {
		libcontainer.Init()
		return
	}
	if rootless.IsHelper(os.Args[0]) {
		os.Exit(rootless.RunHelper(os.Args))
	}
	if rootless.IsUnshare(os.Args[0]) {
		os.Exit(rootless.RunUnshare(os.Args))
	}
	if reexec.Init() {
		return
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case shim.Role:
			os.Exit(shim.Main(os.Args[2:]))
		case rootless.Role:
			os.Exit(rootless.Main())
		case plugins.BuiltinRole:
			// moss __plugin networkdriver NAME or volumedriver NAME: a
			// built-in driver, served as a plugin process (netdrivers,
			// storage/localvol); volumedriver docker-protocol NAME ADDR
			// adapts a Docker volume plugin (contrib/dockervolume).
			if len(os.Args) > 2 && os.Args[2] == plugins.KindNetwork+"driver" {
				os.Exit(netdrivers.Main(os.Args[3:]))
			}
			if len(os.Args) > 3 && os.Args[2] == plugins.KindVolume+"driver" {
				if os.Args[3] == plugins.DockerProtocol {
					os.Exit(dockervolume.Main(os.Args[4:]))
				}
				os.Exit(localvol.Main(os.Args[3:]))
			}
			os.Exit(2)
		}
	}
	cli.AgentCommand = agent.Main
	os.Exit(cli.Main(os.Args[1:]))
}
