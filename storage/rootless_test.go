package storage

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// rootlessEnv marks the test binary's run inside a single-ID user
// namespace, made by TestRootlessSingleID.
const rootlessEnv = "MOSS_STORAGE_TEST_ROOTLESS"

// TestRootlessSingleID runs TestRootlessChild as the unprivileged user
// nobody inside `unshare --user --map-root-user --mount`: only one ID is
// mapped, as Moss has it for a user with no subordinate ID range.
func TestRootlessSingleID(t *testing.T) {
	if os.Getenv(rootlessEnv) != "" {
		t.Skip("already inside the user namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("runs the rootless case as the user nobody through runuser, which needs root; as an unprivileged user run the test binary under `unshare --user --map-root-user --mount` with " + rootlessEnv + "=1")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody to run as: %v", err)
	}
	for _, prog := range []string{"runuser", "unshare"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed: %v", prog, err)
		}
	}
	// nobody must be able to run a copy of the test binary.
	dir, err := os.MkdirTemp("", "moss-storage-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "storage.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("runuser", "-u", "nobody", "--",
		"unshare", "--user", "--map-root-user", "--mount",
		"env", rootlessEnv+"=1", "TMPDIR=/tmp", "HOME=/nonexistent",
		bin, "-test.run", "^TestRootlessChild$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("inside the user namespace:\n%s", out.String())
	if err != nil {
		t.Fatalf("rootless run failed: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestRootlessChild") {
		t.Fatal("TestRootlessChild did not pass inside the user namespace")
	}
}

// TestRootlessChild is the rootless case's body, run by
// TestRootlessSingleID inside a user namespace with a single mapped ID.
func TestRootlessChild(t *testing.T) {
	if os.Getenv(rootlessEnv) == "" {
		t.Skip("runs inside the user namespace made by TestRootlessSingleID")
	}
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(uidMap)); len(f) != 3 || f[0] != "0" || f[2] != "1" {
		t.Fatalf("want a single-ID user namespace, uid_map is %q", uidMap)
	}
	rootfs := busyboxRootfs(t)

	// Without IgnoreChownErrors a file owned by an unmapped ID cannot be
	// stored, and the failed import leaves nothing behind.
	strict := openTest(t, Options{})
	if strict.Driver() != "overlay" {
		t.Errorf("driver %q, want native overlay in the user namespace", strict.Driver())
	}
	if _, err := strict.Import(t.Context(), bytes.NewReader(rootfs), "strict", ImportConfig{}); err == nil {
		t.Error("import of a file owned by uid 1000 succeeded without IgnoreChownErrors")
	} else {
		t.Logf("without IgnoreChownErrors: %v", err)
	}
	if n := layerCount(t, strict); n != 0 {
		t.Errorf("failed import left %d layers", n)
	}

	s := openTest(t, Options{IgnoreChownErrors: true})
	img := mustImport(t, s, gzipped(t, rootfs), "busybox", ImportConfig{Cmd: []string{"sh"}})
	if err := s.CreateContainer("rootless", img.ID, false); err != nil {
		t.Fatal(err)
	}
	root, err := s.Mount("rootless")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "home/owned")); err != nil || string(b) != "by 1000" {
		t.Errorf("home/owned: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatalf("copy-up in the user namespace: %v", err)
	}
	if got := mountedUnder(t, s.GraphRoot()); len(got) != 1 {
		t.Errorf("mounts %v", got)
	}
	if err := s.DeleteContainer("rootless"); err != nil {
		t.Fatal(err)
	}
	if got := mountedUnder(t, s.GraphRoot()); len(got) != 0 {
		t.Errorf("mounts left: %v", got)
	}
	if _, _, err := s.RemoveImage("busybox", false); err != nil {
		t.Error(err)
	}
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
