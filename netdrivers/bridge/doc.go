// Package bridge is Moss's built-in "bridge" network driver: a Linux
// bridge per network in the namespace that holds Moss's networks, a veth
// pair per container, addresses from the driver's own IPAM, masquerading
// and isolation with nftables, and an embedded DNS server per network. It
// implements plugins.NetworkDriver and runs as a plugin process (see
// package netdrivers); it passes plugins/networktest.
//
// # Where it runs
//
// Under rootlesskit the plugin is root in the rootless user namespace but
// sits in the host's network namespace, which that user namespace does
// not own. Bridges, veth host ends and the nftables table live in the
// namespace named by ConfigureRequest.NetnsPath — rootlesskit's detached
// namespace, whose way out is a tap device served by pasta or
// slirp4netns; with an empty NetnsPath (Moss run as root) they live in
// the plugin's own. The driver reaches those namespaces through netlink
// sockets opened once, from a thread that entered the namespace and then
// ends: a thread cannot come back to the host's namespace (setns(2) says
// EPERM), so no thread of the plugin ever leaves its own for good.
// Containers' namespaces (ConnectRequest.NetnsPath) are entered the same
// way, one short-lived thread per Connect.
//
// # Networks
//
// The default network ("bridge", CreateNetworkRequest.Default) is
// 10.88.0.0/16, gateway 10.88.0.1, on bridge moss0; user networks
// without a subnet get the first /24 of 10.89.0.0-10.255.255.0 that
// overlaps neither another network nor an address of the bridge
// namespace (Podman's pool), on bridge mossbr-<8 characters of the
// network ID> (or com.docker.network.bridge.name). A given subnet that
// overlaps another network is an Exists error naming that network; one
// that overlaps an address of the bridge namespace (its way out) is
// Invalid, as are malformed subnets, gateways and ranges. One IPv4 subnet
// per network; IPv6 is Unsupported. com.docker.network.driver.mtu sets
// the MTU (default 1500). CreateNetwork of a known network_id makes its
// kernel objects exist again and answers its addressing as first chosen.
//
// # Endpoints
//
// Connect creates the veth pair in one request — the host end on the
// bridge and up, the peer made directly in the container's namespace
// with its final name and MAC — then, from a thread in that namespace,
// gives the peer its address, brings it up and adds the default route
// via the gateway (not on internal networks, nor when the container
// already has one from a network joined before). Dynamic addresses are
// handed out in order after the last one, wrapping, so that a released
// address is not reused at once (stale ARP entries); static ones may be
// anywhere in the subnet but the network, gateway and broadcast
// addresses (the ip-range bounds dynamic ones, as in Docker). Veth host
// ends are named mossv + a hash of the endpoint ID, so that a Connect cut
// short is found and replaced. Disconnect returns at once: the kernel
// takes an RCU grace period (some 20 ms) to delete a device, so the veth
// is deleted in the background, on a netlink socket of its own, and its
// address is free again only once it is gone; a Connect needing that
// address, or a name the old veth still holds, waits for it.
//
// # Firewall
//
// One nftables table, "ip moss", owned by the driver and rewritten whole
// in one transaction on every change (and on Configure after a restart):
// traffic between two Moss bridges is dropped, an internal network's
// bridge forwards nothing in or out, and traffic from each non-internal
// subnet leaving by another interface is masqueraded. The rest of the
// ruleset is not touched. Forward-chain drops elsewhere in the ruleset
// (Docker's iptables FORWARD policy, say, when Moss runs as root) would
// still drop the networks' traffic.
//
// # DNS
//
// Each network has a server on gateway:53, UDP and TCP, whose sockets are
// opened in the bridge namespace. It answers A queries (TTL 600, as
// Docker) for the container names, short IDs (12 characters; a full ID
// is longer than a DNS label may be) and aliases of the containers on
// that network, case-insensitively, with no data for other types of
// those names, and PTR queries for their addresses; the default network
// answers no names, as Docker's default bridge. Everything else is
// forwarded, from the plugin's own namespace (so that a stub resolver on
// 127.0.0.53 works), to the nameservers of /etc/resolv.conf (option
// resolv_conf names another file), and the first answer that is not
// SERVFAIL or REFUSED — NXDOMAIN included — is relayed; without one,
// SERVFAIL. Internal networks forward nothing (Docker neither: their DNS
// is no way out). Queries from outside the network's subnet are REFUSED.
//
// # State
//
// Networks are StateDir/networks/ID.json, written atomically and synced.
// Endpoints are RunDir/endpoints/NETWORK/ENDPOINT.json, written
// atomically: they live as long as their containers' namespaces, which do
// not outlive a reboot either, and a file on tmpfs costs a Connect a
// tenth of one on disk. A new process on the same directories carries on:
// it restores bridges, addresses, the table and the DNS listeners,
// forgets endpoints whose veth is gone, removes veths no endpoint owns,
// and leaves the others untouched.
package bridge
