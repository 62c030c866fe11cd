package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Acceptance 6: cp of a file and a directory both ways keeps contents and
// modes; a destination behind a symlink to / or .. stays inside the
// container; and export and diff see the same files. The docker CLI does
// the same.
func TestCp(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "cpc", image, "sh", "-c",
		"mkdir -p /data/sub && echo hello > /data/f && chmod 640 /data/f && echo deep > /data/sub/g && ln -s / /data/root && ln -s ../.. /data/up && sleep 1000")
	rmf(t, "cpc")
	waitFor(t, "the container's files", 10*time.Second, func() bool { return moss(t, "exec", "cpc", "test", "-L", "/data/up").code == 0 })
	dir := t.TempDir()
	// Out of the container: a file, a directory (modes kept, symlinks as links).
	mustMoss(t, "cp", "cpc:/data/f", filepath.Join(dir, "f"))
	mustMoss(t, "cp", "cpc:/data", filepath.Join(dir, "d"))
	for p, want := range map[string]string{"f": "hello\n", "d/f": "hello\n", "d/sub/g": "deep\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "d", "f")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode of the copied file: %v, %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "d", "root")); err != nil || l != "/" {
		t.Errorf("symlink copied as %q, %v", l, err)
	}
	// Into the container: a file and a directory, through symlinks that
	// point at / and at ../.. — both resolve inside the container.
	if err := os.MkdirAll(filepath.Join(dir, "tree", "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tree", "a", "b"), []byte("in\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "up.txt"), []byte("up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustMoss(t, "cp", filepath.Join(dir, "up.txt"), "cpc:/data/root/tmp/")
	mustMoss(t, "cp", filepath.Join(dir, "tree"), "cpc:/data/up/tmp/")
	mustMoss(t, "cp", filepath.Join(dir, "up.txt"), "cpc:/renamed.txt")
	out := mustMoss(t, "exec", "cpc", "sh", "-c", "cat /tmp/up.txt /tmp/tree/a/b /renamed.txt; stat -c %a /tmp/tree/a/b")
	if out != "up\nin\nup\n600\n" {
		t.Fatalf("files copied into the container: %q", out)
	}
	if _, err := os.Stat("/tmp/tree/a/b"); err == nil {
		t.Fatal("a copy through a symlink landed on the host")
	}
	// A tar on stdout and stdin.
	tarOut := runCmd(t, "", mossBin, "cp", "cpc:/data/sub", "-")
	if tarOut.code != 0 || !strings.Contains(tarOut.stdout, "deep") {
		t.Fatalf("cp to -: %d %q", tarOut.code, tarOut.stderr)
	}
	if r := runCmd(t, tarOut.stdout, mossBin, "cp", "-", "cpc:/tmp"); r.code != 0 {
		t.Fatalf("cp from -: %d %q", r.code, r.stderr)
	}
	if out := mustMoss(t, "exec", "cpc", "cat", "/tmp/sub/g"); out != "deep\n" {
		t.Fatalf("cp - extracted %q", out)
	}
	// diff and export see the container's changes.
	diff := mustMoss(t, "diff", "cpc")
	for _, want := range []string{"A /data/f", "A /renamed.txt", "A /tmp/tree/a/b"} {
		if !strings.Contains(diff, want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/etc/hosts") {
		t.Errorf("diff shows the generated /etc/hosts:\n%s", diff)
	}
	exp := filepath.Join(dir, "export.tar")
	mustMoss(t, "export", "-o", exp, "cpc")
	list, err := exec.Command("tar", "-tf", exp).Output()
	if err != nil || !strings.Contains(string(list), "renamed.txt") || !strings.Contains(string(list), "bin/busybox") {
		t.Fatalf("export: %v\n%.500s", err, list)
	}
	// Bad input (acceptance 8): a missing path either way, a missing container.
	if r := moss(t, "cp", "cpc:/no-such-file", dir); r.code == 0 || !strings.Contains(r.stderr, "Could not find the file") {
		t.Errorf("cp of a missing file: %d %q", r.code, r.stderr)
	}
	if r := moss(t, "cp", filepath.Join(dir, "up.txt"), "cpc:/no/such/dir/x"); r.code == 0 || !strings.Contains(r.stderr, "Could not find") {
		t.Errorf("cp to a missing directory: %d %q", r.code, r.stderr)
	}
	if r := moss(t, "cp", filepath.Join(dir, "up.txt"), "no-such-ctr:/tmp"); r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("cp to a missing container: %d %q", r.code, r.stderr)
	}
	if _, err := exec.LookPath("docker"); err == nil {
		if d := docker(t, "cp", filepath.Join(dir, "tree"), "cpc:/dtree"); d.code != 0 {
			t.Fatalf("docker cp in: %d %q", d.code, d.stderr)
		}
		if d := docker(t, "cp", "cpc:/dtree", filepath.Join(dir, "back")); d.code != 0 {
			t.Fatalf("docker cp out: %d %q", d.code, d.stderr)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "back", "a", "b")); err != nil || string(b) != "in\n" {
			t.Errorf("docker cp round trip: %q %v", b, err)
		}
	}
}
