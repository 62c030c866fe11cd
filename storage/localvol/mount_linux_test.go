package localvol_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/networktest"
	"github.com/moss-containers/moss/plugins/volumetest"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// privileged lets the test mount: as root it runs as it is, otherwise
// again as root of user and mount namespaces of its own
// (networktest.Isolate) — where the plugin runs under rootlesskit. It
// returns false where the test must return.
func privileged(t *testing.T) bool {
	if os.Getuid() == 0 {
		return true
	}
	return networktest.Isolate(t)
}

var tmpfsOpts = map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=16m"}

func bindOpts(dir string) map[string]string {
	return map[string]string{"type": "none", "o": "bind", "device": dir}
}

// unmountAll detaches whatever is mounted under dir.
func unmountAll(t *testing.T, dir string) {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Error(err)
		return
	}
	for k := len(ms) - 1; k >= 0; k-- {
		if err := unix.Unmount(ms[k].Mountpoint, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", ms[k].Mountpoint, err)
		}
	}
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	m, err := mountinfo.Mounted(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConformanceTmpfs runs the suite for tmpfs volumes, whose data lives
// as long as they are mounted.
func TestConformanceTmpfs(t *testing.T) {
	if !privileged(t) {
		return
	}
	volumetest.Run(t, harness(tmpfsOpts, true))
}

// TestConformanceBind runs it for bind mounts of one host directory.
func TestConformanceBind(t *testing.T) {
	if !privileged(t) {
		return
	}
	volumetest.Run(t, harness(bindOpts(t.TempDir()), false))
}

// TestTmpfs: a tmpfs of the size and flags of o, mounted at the first
// Mount, kept across a restart, unmounted at the last Unmount.
func TestTmpfs(t *testing.T) {
	if !privileged(t) {
		return
	}
	e := newEnv(t)
	e.create("scratch", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,noexec,nosuid,mode=0710"})
	v, err := e.d.Get(ctx(t), &volumev1.GetRequest{Name: "scratch"})
	if err != nil {
		t.Fatal(err)
	}
	data := v.GetMountpoint()
	if mounted(t, data) {
		t.Fatal("a tmpfs volume is mounted before its first Mount")
	}
	p := e.mount("scratch", "c1")
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Errorf("the volume's file system is %#x, not tmpfs", st.Type)
	}
	if st.Flags&unix.ST_NOEXEC == 0 || st.Flags&unix.ST_NOSUID == 0 {
		t.Errorf("statfs flags %#x lack noexec or nosuid", st.Flags)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o710 {
		t.Errorf("the volume's root: %v, %v; want mode 0710", fi.Mode(), err)
	}
	err = os.WriteFile(filepath.Join(p, "big"), bytes.Repeat([]byte("x"), 2<<20), 0o644)
	if !errors.Is(err, unix.ENOSPC) {
		t.Errorf("writing 2 MB into a 1 MB tmpfs: %v, want ENOSPC", err)
	}
	if err := os.Remove(filepath.Join(p, "big")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "kept"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	e.start()
	if !mounted(t, data) {
		t.Fatal("a restart unmounted the tmpfs")
	}
	if _, err := os.Stat(filepath.Join(p, "kept")); err != nil {
		t.Errorf("a restart lost the tmpfs's data: %v", err)
	}
	e.mount("scratch", "c2")
	e.unmount("scratch", "c1")
	if !mounted(t, data) {
		t.Fatal("unmounted while a mount id holds it")
	}
	e.unmount("scratch", "c2")
	if mounted(t, data) {
		t.Fatal("still mounted after the last Unmount")
	}
	p = e.mount("scratch", "c3")
	if _, err := os.Stat(filepath.Join(p, "kept")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a tmpfs mounted again has the old data: %v", err)
	}
	e.unmount("scratch", "c3")
	e.remove("scratch")
	if names := e.entries(); len(names) != 0 {
		t.Errorf("after Remove the root has %v", names)
	}
}

// TestLostMount: mount ids of a volume whose mount went away while the
// plugin was not running (its mount namespace ended) are forgotten; a
// mount that no mount id holds is undone.
func TestLostMount(t *testing.T) {
	if !privileged(t) {
		return
	}
	e := newEnv(t)
	e.create("lost", tmpfsOpts)
	e.create("stale", tmpfsOpts)
	p := e.mount("lost", "c1")
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(e.root(), "stale", "_data")
	if err := unix.Mount("tmpfs", stale, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(stale, unix.MNT_DETACH) })
	e.start()
	if mounted(t, stale) {
		t.Error("a restart left a mount no mount id holds")
	}
	e.remove("lost")
	e.remove("stale")
}

// TestBind: a bind mount of a host directory shows and takes its files;
// Remove deletes the volume, never the directory's files.
func TestBind(t *testing.T) {
	if !privileged(t) {
		return
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.create("bound", bindOpts(host))
	p := e.mount("bound", "c1")
	if got, err := os.ReadFile(filepath.Join(p, "f")); err != nil || string(got) != "host" {
		t.Errorf("the host's file through the volume: %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(p, "g"), []byte("volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.unmount("bound", "c1")
	if mounted(t, p) {
		t.Error("still mounted after the last Unmount")
	}
	e.remove("bound")
	for _, f := range []string{"f", "g"} {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("Remove of a bind volume took the host's file %s: %v", f, err)
		}
	}

	// Read-only: writes fail, the host directory stays writable.
	e.create("ro", map[string]string{"type": "none", "o": "bind,ro", "device": host})
	p = e.mount("ro", "c1")
	if err := os.WriteFile(filepath.Join(p, "h"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a read-only bind volume: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(host, "h"), nil, 0o644); err != nil {
		t.Errorf("the host directory of a read-only volume: %v", err)
	}
	e.unmount("ro", "c1")
	e.remove("ro")

	// In a user namespace the host's mounts' atime flag is locked: the
	// remount keeps it instead of failing.
	e.create("noatime", map[string]string{"type": "none", "o": "bind,ro,noatime", "device": host})
	p = e.mount("noatime", "c1")
	if err := os.WriteFile(filepath.Join(p, "h"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a read-only bind volume: %v, want EROFS", err)
	}
	e.unmount("noatime", "c1")
	e.remove("noatime")
}

// TestRemoveNotThroughMounts: what is mounted under a volume (a stale
// mount, another's bind mount) is unmounted before its files are deleted:
// Remove never deletes through it.
func TestRemoveNotThroughMounts(t *testing.T) {
	if !privileged(t) {
		return
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.create("plain", nil)
	sub := filepath.Join(e.mount("plain", "c1"), "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, sub, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })
	e.unmount("plain", "c1")
	e.remove("plain")
	if _, err := os.Stat(filepath.Join(host, "precious")); err != nil {
		t.Errorf("Remove deleted through a bind mount under the volume: %v", err)
	}

	// A Create killed during its trial mount of a bind volume: the
	// restart clears the leftover, not the host's files.
	left := filepath.Join(e.root(), ".create-cut-0123", "_data")
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, left, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(left, unix.MNT_DETACH) })
	e.start()
	if names := e.entries(); len(names) != 0 {
		t.Errorf("after a restart the root has %v", names)
	}
	if _, err := os.Stat(filepath.Join(host, "precious")); err != nil {
		t.Errorf("clearing an interrupted Create deleted through its bind mount: %v", err)
	}
}

// TestRemoveReadOnly: read-only directories and files in a volume go with
// it (the plugin is root of its user namespace).
func TestRemoveReadOnly(t *testing.T) {
	if !privileged(t) {
		return
	}
	e := newEnv(t)
	e.create("ro", nil)
	p := e.mount("ro", "c1")
	deep := filepath.Join(p, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "f"), nil, 0o400); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{deep, filepath.Dir(deep)} {
		if err := os.Chmod(d, 0o500); err != nil {
			t.Fatal(err)
		}
	}
	e.unmount("ro", "c1")
	e.remove("ro")
	if names := e.entries(); len(names) != 0 {
		t.Errorf("after Remove the root has %v", names)
	}
}

// TestKernelRefuses: options the kernel refuses are Create's errors, with
// nothing left mounted or on disk.
func TestKernelRefuses(t *testing.T) {
	if !privileged(t) {
		return
	}
	e := newEnv(t)
	for _, c := range []struct {
		opts map[string]string
		kind error
		msg  string
	}{
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "bogus=1"}, plugins.ErrInvalid, "the kernel refused the options"},
		{map[string]string{"type": "nosuchfs", "device": "x"}, plugins.ErrInvalid, `does not know file system type "nosuchfs"`},
	} {
		_, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: "bad", Options: c.opts})
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Create with %v: %v, want a %v error saying %q", c.opts, err, c.kind, c.msg)
		}
	}
	if names := e.entries(); len(names) != 0 {
		t.Errorf("refused Creates left %v", names)
	}
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(e.root()))
	if err != nil || len(ms) != 0 {
		t.Errorf("refused Creates left mounts %v (%v)", ms, err)
	}
}

// TestUserNamespaceRefuses: in a user namespace (always, even for root)
// a file system the kernel does not let it mount is an Unsupported error
// that says so.
func TestUserNamespaceRefuses(t *testing.T) {
	if !networktest.Isolate(t) {
		return
	}
	e := newEnv(t)
	_, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: "disk", Options: map[string]string{"type": "ext4", "device": "/dev/null"}})
	if !errors.Is(err, plugins.ErrUnsupported) || !strings.Contains(err.Error(), "the kernel does not allow mounting ext4 in a user namespace") {
		t.Errorf("Create of an ext4 volume in a user namespace: %v, want an Unsupported error that explains", err)
	}
	if names := e.entries(); len(names) != 0 {
		t.Errorf("a refused Create left %v", names)
	}
}
