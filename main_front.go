//go:build moss_front

// The front binary, bin/moss: the CLI, the per-container shim and
// libcontainer's init, the processes on the path of every container start,
// without the agent's dependencies (storage, containers/image, rootlesskit),
// whose package initialisers cost every process of the full binary about
// 7 ms. It carries the full binary (main.go) compressed and runs it for
// `moss agent` and for any other hidden role.
package main

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/cli"
	"github.com/moss-containers/moss/internal/agentexe"
	_ "github.com/moss-containers/moss/internal/mossinit"
	"github.com/moss-containers/moss/internal/paths"
)

// full is the full binary, gzip-compressed (hack/build.sh puts it there).
//
//go:embed bin/moss-full.gz
var full []byte

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != "" {
		libcontainer.Init()
		return
	}
	if len(os.Args) > 1 {
		switch {
		case os.Args[1] == shim.Role:
			os.Exit(shim.Main(os.Args[2:]))
		case strings.HasPrefix(os.Args[1], "__"):
			os.Exit(runFull(os.Args[1:]))
		}
	}
	cli.AgentCommand = func(args []string) int { return runFull(append([]string{"agent"}, args...)) }
	os.Exit(cli.Main(os.Args[1:]))
}

// runFull executes the full binary with args; it returns only on failure.
func runFull(args []string) int {
	d, err := paths.Default()
	if err == nil {
		err = d.Ensure()
	}
	var path string
	if err == nil {
		path, err = agentexe.Unpack(full, d.Runtime)
	}
	if err == nil {
		err = agentexe.Exec(path, args)
	}
	fmt.Fprintf(os.Stderr, "moss: %v\n", err)
	return 125
}
