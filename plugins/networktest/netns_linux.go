package networktest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// envIsolated marks the child process of Isolate; its value is the name
// of the test it runs.
const envIsolated = "MOSS_NETWORKTEST_ISOLATED"

// Isolate runs the calling test again, alone, in a child process of the
// test binary that is root in a new user namespace — root mapped to the
// caller's uid and gid, so it works for an unprivileged user too — with
// new mount and network namespaces (lo up). It returns true in the child,
// where the test goes on. In the calling process it waits for the child,
// fails the test with the child's output if the child failed or did not
// run the test, logs that output in verbose mode, and returns false: the
// test must then return.
//
//	func TestBridge(t *testing.T) {
//		if !networktest.Isolate(t) {
//			return
//		}
//		… // root, in namespaces of its own
//	}
func Isolate(t *testing.T) bool { return isolate(t, true) }

// IsolateHostNetns is Isolate without a new network namespace: the child
// stays in the caller's network namespace, which its user namespace does
// not own — where a Moss plugin under rootlesskit sits. A thread of the
// child that enters another network namespace cannot come back, and the
// child can change nothing in its own one.
func IsolateHostNetns(t *testing.T) bool { return isolate(t, false) }

func isolate(t *testing.T, newNet bool) bool {
	t.Helper()
	if name := os.Getenv(envIsolated); name != "" {
		if name != t.Name() && !strings.HasPrefix(t.Name(), name+"/") {
			t.Fatalf("networktest: %s runs isolated as part of %s, which was isolated differently", t.Name(), name)
		}
		return true
	}
	var parts []string
	for _, p := range strings.Split(t.Name(), "/") {
		parts = append(parts, "^"+regexp.QuoteMeta(p)+"$")
	}
	args := []string{"-test.run=" + strings.Join(parts, "/"), "-test.v", "-test.count=1"}
	if dl, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(dl).Round(time.Second).String())
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envIsolated+"="+t.Name())
	flags := uintptr(syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS)
	if newNet {
		flags |= syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	switch {
	case err != nil:
		t.Fatalf("isolated run of %s: %v\n%s", t.Name(), err, out.String())
	case bytes.Contains(out.Bytes(), []byte("--- SKIP: "+t.Name()+" ")):
		t.Skipf("isolated run skipped:\n%s", out.String())
	case !bytes.Contains(out.Bytes(), []byte("--- PASS: "+t.Name()+" ")):
		t.Fatalf("isolated run of %s did not run the test:\n%s", t.Name(), out.String())
	case testing.Verbose():
		t.Logf("isolated run:\n%s", out.String())
	}
	return false
}

// init prepares an Isolate child before any test runs: its mounts become
// private (nothing it bind-mounts leaks out), and in a new network
// namespace lo comes up. A failure ends the child, which fails the test.
func init() {
	if os.Getenv(envIsolated) == "" {
		return
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Fprintln(os.Stderr, "networktest: make mounts private:", err)
		os.Exit(3)
	}
	if lo, err := netlink.LinkByName("lo"); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(lo); err != nil {
			fmt.Fprintln(os.Stderr, "networktest: lo up:", err)
			os.Exit(3)
		}
	}
}

// NewNetns makes a network namespace with lo up, bind-mounted on a file
// of a temporary directory, as container runtimes and rootlesskit keep
// theirs, and returns the file's path. The test's cleanup unmounts it. It
// needs the privileges of an Isolate child.
func NewNetns(t testing.TB) string {
	t.Helper()
	path, remove, err := newNetns(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = remove() })
	return path
}

// NewNetnsRemovable is NewNetns that also returns a function that removes
// the namespace before the test ends (a container that goes away).
func NewNetnsRemovable(t testing.TB) (path string, remove func() error) {
	t.Helper()
	path, remove, err := newNetns(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = remove() })
	return path, remove
}

func newNetns(dir string) (string, func() error, error) {
	path := filepath.Join(dir, "netns")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return "", nil, err
	}
	errc := make(chan error, 1)
	go func() {
		// The thread never leaves the new namespace: it ends with the
		// goroutine (it could not go back to a namespace its user
		// namespace does not own).
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		return "", nil, err
	}
	removed := false
	return path, func() error {
		if removed {
			return nil
		}
		removed = true
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			return err
		}
		return os.Remove(path)
	}, nil
}

// Do runs fn on an OS thread that has entered the network namespace at
// path, and ends the thread afterwards. Sockets fn opens stay in that
// namespace: a listener made in fn accepts connections there after Do
// returns, a connection dialled in fn goes out from there.
func Do(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
