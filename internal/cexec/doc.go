// Package cexec holds the C code that executes a command inside a running
// container in libcontainer's place, where libcontainer's init (a Go
// process started for each command) costs more than the command: the
// warm stub, PID 1 of a warm container until it executes the first
// command (stub.go), and the fast exec, which starts an exec's process
// with the same namespaces, credentials, capabilities, limits and seccomp
// filter as libcontainer's setns init gives it (exec.go, seccomp.go). Both
// look the command up and report failures as libcontainer does
// (lookpath.h).
package cexec
