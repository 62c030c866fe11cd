package networktest_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/networktest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// threadNetns is the inode of the network namespace of a thread that
// never entered another one.
func threadNetns(t *testing.T) uint64 {
	t.Helper()
	return inode(t, "/proc/thread-self/ns/net")
}

// TestIsolate: root in the child, namespaces of its own; NewNetns makes
// another one that Do enters, and sockets made in Do stay in it.
func TestIsolate(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	if os.Getuid() != 0 {
		t.Fatalf("uid %d in the isolated child, want 0", os.Getuid())
	}
	own := threadNetns(t)
	ns := networktest.NewNetns(t)
	if inode(t, ns) == own {
		t.Fatal("NewNetns gave the test's own namespace")
	}
	var inside uint64
	if err := networktest.Do(ns, func() error {
		inside = threadNetns(t)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != inode(t, ns) {
		t.Errorf("Do ran in namespace %d, want %d", inside, inode(t, ns))
	}
	if threadNetns(t) != own {
		t.Error("the calling thread left its namespace")
	}
	// A listener made in ns is reachable from ns only.
	var ln net.Listener
	if err := networktest.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatalf("listen on lo of the new namespace (is it up?): %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := networktest.Do(ns, func() error {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Errorf("dial within the namespace: %v", err)
	}
	if c, err := net.DialTimeout("tcp4", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the test's own namespace reached a listener of another")
	}
}

// TestIsolateHostNetns: the child keeps the caller's namespace, which its
// user namespace does not own: a thread that entered another namespace
// cannot come back — as in a plugin under rootlesskit.
func TestIsolateHostNetns(t *testing.T) {
	if !networktest.IsolateHostNetns(t) {
		return
	}
	host, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ns := networktest.NewNetns(t)
	err = networktest.Do(ns, func() error { return unix.Setns(int(host.Fd()), unix.CLONE_NEWNET) })
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("setns back into the host's namespace: %v, want EPERM", err)
	}
}

// noneDriver is a driver of the NONE kind, like netdrivers' none: one
// default network, no Connect.
type noneDriver struct{}

func (noneDriver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: "none", Kind: plugins.KindNetwork, Version: "test"}, nil
}
func (noneDriver) Configure(context.Context, *basev1.ConfigureRequest) error { return nil }
func (noneDriver) Capabilities(context.Context) (*networkv1.CapabilitiesResponse, error) {
	return &networkv1.CapabilitiesResponse{Namespace: networkv1.Namespace_NAMESPACE_NONE}, nil
}
func (noneDriver) CreateNetwork(_ context.Context, req *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	if !req.GetDefault() {
		return nil, plugins.Unsupported("only the default network")
	}
	return &networkv1.CreateNetworkResponse{}, nil
}
func (noneDriver) DeleteNetwork(context.Context, *networkv1.DeleteNetworkRequest) error { return nil }
func (noneDriver) Connect(context.Context, *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	return nil, errors.New("Connect called for a NONE driver")
}
func (noneDriver) Disconnect(context.Context, *networkv1.DisconnectRequest) error { return nil }

// TestRunNone: the suite runs for a driver without isolated namespaces or
// user networks, and skips what does not apply (no namespaces needed).
func TestRunNone(t *testing.T) {
	networktest.Run(t, networktest.Harness{
		Name:      "none",
		New:       func(t *testing.T) plugins.NetworkDriver { return noneDriver{} },
		Configure: func(t *testing.T) *basev1.ConfigureRequest { return &basev1.ConfigureRequest{StateDir: t.TempDir()} },
	})
}
