package cli

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// portCmd is docker port: the container's published ports from inspect's
// NetworkSettings.Ports.
func (a *app) portCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			want := ""
			if len(args) > 1 {
				want = args[1]
			}
			return a.port(args[0], want)
		},
	}
}

func (a *app) port(ref, want string) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	var info struct {
		NetworkSettings *struct {
			Ports map[string][]struct {
				HostIP   string `json:"HostIp"`
				HostPort string
			}
		}
	}
	if err := cl.call(http.MethodGet, "/containers/"+url.PathEscape(ref)+"/json", nil, nil, &info); err != nil {
		return err
	}
	var ports map[string][]struct {
		HostIP   string `json:"HostIp"`
		HostPort string
	}
	if info.NetworkSettings != nil {
		ports = info.NetworkSettings.Ports
	}
	var out []string
	if want != "" {
		port, proto, _ := strings.Cut(want, "/")
		if proto == "" {
			proto = "tcp"
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("Error: invalid port (%s): %v", port, err)}
		}
		frontends := ports[port+"/"+proto]
		if len(frontends) == 0 {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("Error: No public port '%s' published for %s", want, ref)}
		}
		for _, f := range frontends {
			out = append(out, net.JoinHostPort(f.HostIP, f.HostPort))
		}
	} else {
		for from, frontends := range ports {
			for _, f := range frontends {
				out = append(out, from+" -> "+net.JoinHostPort(f.HostIP, f.HostPort))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	for _, l := range out {
		fmt.Fprintln(a.out, l)
	}
	return nil
}
