package bridge

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/plugins"
)

// inNetns runs fn on an OS thread of its own that has entered the network
// namespace ns; the thread ends with fn. It never goes back: under
// rootlesskit the plugin is root in a user namespace that does not own the
// host's network namespace, where it sits, so setns(2) back into it fails
// (EPERM) — which vishvananda/netlink's NewHandleAt and mdlayher/socket's
// NetNS option would ignore or fail on. Sockets opened by fn keep their
// namespace after the thread is gone. A closed ns means the plugin's own
// namespace: fn runs on the calling goroutine.
func inNetns(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	return plugins.OnThrowawayThread(func() error {
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return fn()
	})
}

// openNetns opens the network namespace at path; "" is the plugin's own,
// returned as a closed handle (see inNetns).
func openNetns(path string) (netns.NsHandle, error) {
	if path == "" {
		return netns.None(), nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return ns, nil
}

// netlinkTimeout bounds a netlink request: the kernel answers in
// microseconds, a stuck request must not hang an RPC for ever.
const netlinkTimeout = 5 * time.Second

// newHandle opens a rtnetlink handle whose socket lives in ns.
func newHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNetns(ns, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// enableForwarding turns on IPv4 forwarding in ns. /proc/sys/net shows
// the namespace of the thread that opens it.
func enableForwarding(ns netns.NsHandle) error {
	return inNetns(ns, func() error {
		const p = "/proc/sys/net/ipv4/ip_forward"
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
			return nil
		}
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
		return nil
	})
}
