package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFreeze(t *testing.T) {
	if _, err := Freeze(nil, time.Second); !errors.Is(err, ErrNoFreezer) {
		t.Errorf("no cgroup: %v", err)
	}
	if _, err := Freeze(map[string]string{"freezer": t.TempDir()}, time.Second); !errors.Is(err, ErrNoFreezer) {
		t.Errorf("freezer without its file: %v", err)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "freezer.state")
	if err := os.WriteFile(state, []byte("THAWED\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	thaw, err := Freeze(map[string]string{"freezer": dir, "memory": "/nope"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(state); string(b) != "FROZEN" {
		t.Errorf("state %q while frozen", b)
	}
	if err := thaw(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(state); string(b) != "THAWED" {
		t.Errorf("state %q after thaw", b)
	}
	// v2: a cgroup that never reports frozen is thawed again.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0o644)
	os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644)
	if _, err := Freeze(map[string]string{"": dir}, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not freeze") {
		t.Errorf("v2 cgroup that does not freeze: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); string(b) != "0" {
		t.Errorf("cgroup.freeze %q after a failed freeze", b)
	}
}
