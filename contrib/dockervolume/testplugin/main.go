// Command moss-docker-volume-testplugin is a small Docker volume plugin
// for Moss's tests: it serves Docker's volume-plugin HTTP protocol on a
// unix socket and keeps each volume as a directory under -root (package
// dockertest). Integration tests put its socket in the user's plugin
// directory, where Moss finds it as a Docker plugin named after the
// socket (NAME.sock).
//
//	moss-docker-volume-testplugin -sock ~/.local/share/moss/plugins/dtest.sock -root /tmp/dtest
//
// With -crash-on-mount it exits (status 3) when asked to mount, to play
// a plugin that crashes during Mount.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/moss-containers/moss/contrib/dockervolume/dockertest"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("moss-docker-volume-testplugin", flag.ContinueOnError)
	sock := fs.String("sock", "", "unix socket to listen on (required)")
	root := fs.String("root", "", "directory of the volumes (required; created if missing)")
	scope := fs.String("scope", "local", `what Capabilities answers: "local", "global", or "" for no Capabilities (404)`)
	implements := fs.String("implements", "VolumeDriver", "comma-separated subsystems /Plugin.Activate announces")
	crash := fs.Bool("crash-on-mount", false, "exit (status 3) when asked to mount a volume")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sock == "" || *root == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if err := os.MkdirAll(*root, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := &dockertest.Plugin{Root: *root, Scope: *scope, Implements: strings.Split(*implements, ",")}
	if *crash {
		p.OnMount = func(http.ResponseWriter) bool {
			fmt.Fprintln(os.Stderr, "crashing on Mount, as asked (-crash-on-mount)")
			os.Exit(3)
			return false
		}
	}
	l, err := dockertest.Listen(*sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: p}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	fmt.Fprintf(os.Stderr, "serving the Docker volume-plugin protocol on %s, volumes in %s\n", *sock, *root)
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = os.Remove(*sock)
	return 0
}
