// Command moss-cni is a Moss network plugin that runs standard CNI
// plugins (bridge, host-local, portmap, macvlan, …): `moss network create
// -d cni -o conflist=NAME NAME` makes a network of a CNI network list, and
// without a conflist the adapter generates a bridge network. It is built
// on Moss's public plugin SDK only; see README.md.
package main

import "github.com/moss-containers/moss/plugins"

func main() {
	plugins.Serve(newDriver(plugins.Logger().Named("cni")))
}
