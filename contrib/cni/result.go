package main

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// toResponse turns a CNI result into the agent's answer: the interfaces in
// the container's namespace (those with a sandbox) with their addresses as
// CIDR, the routes with their gateways, DNS settings. ifName is the
// interface the agent asked for: addresses and routes that name no
// interface are its.
func toResponse(r types.Result, ifName string) (*networkv1.ConnectResponse, error) {
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("CNI result: %w", err)
	}
	resp := &networkv1.ConnectResponse{
		DnsServers: res.DNS.Nameservers,
		DnsSearch:  res.DNS.Search,
		DnsOptions: res.DNS.Options,
	}
	if res.DNS.Domain != "" && len(res.DNS.Search) == 0 {
		resp.DnsSearch = []string{res.DNS.Domain}
	}
	// Interfaces by their index in the result.
	byIndex := map[int]*networkv1.Interface{}
	var main *networkv1.Interface
	for i, ifc := range res.Interfaces {
		if ifc.Sandbox == "" {
			continue // the host's end, or a bridge
		}
		out := &networkv1.Interface{Name: ifc.Name, MacAddress: ifc.Mac}
		byIndex[i] = out
		resp.Interfaces = append(resp.Interfaces, out)
		if ifc.Name == ifName || main == nil {
			main = out
		}
	}
	if main == nil && len(res.IPs) > 0 {
		// A plugin that reports no interfaces (some IPAM-only chains).
		main = &networkv1.Interface{Name: ifName}
		resp.Interfaces = append(resp.Interfaces, main)
	}
	gateways := map[bool]string{} // by "is IPv4"
	for _, ip := range res.IPs {
		ifc := main
		if ip.Interface != nil {
			if i, ok := byIndex[*ip.Interface]; ok {
				ifc = i
			} else if *ip.Interface >= 0 && *ip.Interface < len(res.Interfaces) {
				continue // an address of the host's side
			}
		}
		ifc.Addresses = append(ifc.Addresses, ip.Address.String())
		if ip.Gateway != nil {
			if _, ok := gateways[ip.Gateway.To4() != nil]; !ok {
				gateways[ip.Gateway.To4() != nil] = ip.Gateway.String()
			}
		}
	}
	for _, rt := range res.Routes {
		out := &networkv1.Route{Destination: rt.Dst.String()}
		if main != nil {
			out.Interface = main.Name
		}
		switch {
		case rt.GW != nil:
			out.Gateway = rt.GW.String()
		default:
			// CNI: a route without a gateway goes through the
			// gateway of its address family.
			out.Gateway = gateways[isIPv4(rt.Dst)]
		}
		resp.Routes = append(resp.Routes, out)
	}
	return resp, nil
}

func isIPv4(n net.IPNet) bool { return n.IP.To4() != nil }
