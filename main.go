// Command moss is a rootless, single-binary container agent. One binary plays
// several roles: hidden roles (libcontainer's init, the per-container shim,
// the namespace holder, ID-mapping helpers, containers/storage re-exec
// helpers) are dispatched first, then the CLI.
package main

func main() {
}
