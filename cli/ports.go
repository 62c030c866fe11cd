package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/network"
)

// parsePorts turns -p specs ([IP:][HOSTPORT:]CTRPORT[/PROTO], ranges as
// 8080-8081:80-81, or docker's long form published=…,target=…) and --expose
// ports into the exposed ports and the bindings, with docker's parser and
// messages. Every published port is exposed too.
func parsePorts(publish, expose []string) (network.PortSet, network.PortMap, error) {
	specs, err := convertToStandardNotation(publish)
	if err != nil {
		return nil, nil, err
	}
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, spec := range specs {
		mappings, err := nat.ParsePortSpec(spec)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range mappings {
			if m.Port.Int() == 0 {
				// nat takes 0 for a port; no container listens there.
				_, ctr := nat.SplitProtoPort(spec[strings.LastIndex(spec, ":")+1:])
				return nil, nil, errors.New("invalid containerPort: " + ctr)
			}
			p, err := network.ParsePort(string(m.Port))
			if err != nil {
				return nil, nil, err
			}
			var ip netip.Addr
			if m.Binding.HostIP != "" {
				if ip, err = netip.ParseAddr(m.Binding.HostIP); err != nil {
					return nil, nil, errors.New("invalid IP address: " + m.Binding.HostIP)
				}
			}
			exposed[p] = struct{}{}
			bindings[p] = append(bindings[p], network.PortBinding{HostIP: ip, HostPort: m.Binding.HostPort})
		}
	}
	for _, e := range expose {
		if strings.Contains(e, ":") {
			return nil, nil, fmt.Errorf("invalid port format for --expose: %s", e)
		}
		proto, port := nat.SplitProtoPort(e)
		start, end, err := nat.ParsePortRange(port)
		if err == nil && start == 0 {
			err = errors.New("port 0 is not a valid container port")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s, error: %s", e, err)
		}
		proto = strings.ToLower(proto)
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return nil, nil, errors.New("invalid proto: " + proto)
		}
		pr, ok := network.PortRangeFrom(uint16(start), uint16(end), network.IPProtocol(proto))
		if !ok {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s", e)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}
	if len(exposed) == 0 {
		exposed = nil
	}
	return exposed, bindings, nil
}

// convertToStandardNotation rewrites docker's long -p form
// (published=8080,target=80,protocol=udp) as 8080:80/udp.
func convertToStandardNotation(ports []string) ([]string, error) {
	out := make([]string, 0, len(ports))
	for _, publish := range ports {
		if !strings.Contains(publish, "=") {
			out = append(out, publish)
			continue
		}
		params := map[string]string{"protocol": "tcp"}
		for _, param := range strings.Split(publish, ",") {
			k, v, ok := strings.Cut(param, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", param)
			}
			params[k] = v
		}
		out = append(out, fmt.Sprintf("%s:%s/%s", params["published"], params["target"], params["protocol"]))
	}
	return out, nil
}
