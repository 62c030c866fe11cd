package paths

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultAndEnsure(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root uses /run/moss and /var/lib/moss")
	}
	base := t.TempDir()
	t.Setenv("HOME", base)
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(base, "run"))
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("MOSS_RUNTIME_DIR", "")
	t.Setenv("MOSS_DATA_DIR", "")
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if d.Socket() != filepath.Join(base, "run", "moss", "moss.sock") || d.Data != filepath.Join(base, ".local", "share", "moss") {
		t.Fatalf("%+v", d)
	}
	if err := d.Ensure(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(d.Runtime); fi.Mode().Perm() != 0o700 {
		t.Fatalf("runtime dir mode %v", fi.Mode())
	}
	// Without XDG_RUNTIME_DIR: a per-user directory under the temp dir.
	t.Setenv("XDG_RUNTIME_DIR", "")
	d, _ = Default()
	if !strings.HasPrefix(filepath.Base(d.Runtime), "moss-run-") {
		t.Fatalf("fallback %s", d.Runtime)
	}
}

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rt")
	os.Mkdir(p, 0o700)
	if err := CheckPrivate(p); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o755)
	if err := CheckPrivate(p); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("open directory accepted: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(p, link)
	if err := CheckPrivate(link); err == nil {
		t.Fatal("symlink accepted")
	}
}
