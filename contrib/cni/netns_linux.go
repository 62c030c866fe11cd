package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/plugins"
)

// inNetns runs fn on an OS thread of its own that has entered the network
// namespace at path; "" runs fn on the calling goroutine, in the plugin's
// own namespace. The thread never goes back: under rootlesskit the plugin
// is root in a user namespace that does not own the host's network
// namespace it sits in, so setns(2) back into it fails (EPERM). The
// goroutine ends without unlocking its thread, and the runtime ends the
// thread with it. Processes started and sockets opened by fn keep the
// namespace.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer f.Close()
	return plugins.OnThrowawayThread(func() error {
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", path, err)
		}
		return fn()
	})
}

// isNetns tells whether path is (a bind mount of) a network namespace.
// A container's namespace file outlives the namespace only as a plain
// file, after its bind mount is gone.
func isNetns(path string) bool {
	var st unix.Statfs_t
	if path == "" || unix.Statfs(path, &st) != nil || st.Type != unix.NSFS_MAGIC {
		return false
	}
	// NSFS also holds other kinds of namespaces.
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	kind, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	return err == nil && kind == unix.CLONE_NEWNET
}

// nsExec is libcni's invoke.Exec running CNI plugin executables in the
// network namespace that holds the networks: a CNI plugin makes bridges
// and the host ends of veth pairs in the namespace it was started in, and
// a child process starts in the namespace of the thread that forked it.
type nsExec struct {
	netns  string // the networks' namespace; "" for the plugin's own
	stderr io.Writer
	version.PluginDecoder
}

var _ invoke.Exec = (*nsExec)(nil)

// sbinPath is added to the plugins' PATH: CNI plugins look up iptables and
// friends there, and a user's PATH often lacks the sbin directories.
var sbinPath = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// environ is env with sbinPath completing its PATH.
func environ(env []string) []string {
	out := slices.Clone(env)
	for i, e := range out {
		if p, ok := strings.CutPrefix(e, "PATH="); ok {
			dirs := strings.Split(p, ":")
			for _, d := range sbinPath {
				if !slices.Contains(dirs, d) {
					dirs = append(dirs, d)
				}
			}
			out[i] = "PATH=" + strings.Join(dirs, ":")
			return out
		}
	}
	return append(out, "PATH=/usr/local/bin:/usr/bin:/bin:"+strings.Join(sbinPath, ":"))
}

func (e *nsExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, env []string) ([]byte, error) {
	raw := &invoke.RawExec{Stderr: e.stderr}
	netns := e.netns
	if slices.Contains(env, "CNI_COMMAND=VERSION") {
		netns = "" // needs no namespace: spare a thread
	}
	var out []byte
	err := inNetns(netns, func() error {
		var err error
		out, err = raw.ExecPlugin(ctx, pluginPath, stdin, environ(env))
		return err
	})
	return out, err
}

func (e *nsExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// run runs a command in the networks' namespace and returns its combined
// output.
func (e *nsExec) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	err := inNetns(e.netns, func() error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = environ(os.Environ())
		cmd.Stdout, cmd.Stderr = &out, &out
		return cmd.Run()
	})
	return out.Bytes(), err
}

// usedPrefixes lists the prefixes of the addresses in the networks'
// namespace, by interface name.
func usedPrefixes(netns string) (map[string][]*net.IPNet, error) {
	out := map[string][]*net.IPNet{}
	err := inNetns(netns, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, ifc := range ifs {
			addrs, err := ifc.Addrs()
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					out[ifc.Name] = append(out[ifc.Name], n)
				}
			}
		}
		return nil
	})
	return out, err
}

// deleteLink removes the link name from the networks' namespace; a missing
// link is not an error.
func deleteLink(netns, name string) error {
	return inNetns(netns, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(name)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil
			}
			return err
		}
		return h.LinkDel(l)
	})
}
