package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoFreezer is Freeze's answer for a container without a freezer of
// its own.
var ErrNoFreezer = errors.New("its cgroup has no freezer (rootless containers get one only where the user is delegated cgroups: see moss info)")

func freezerFile(paths map[string]string) (file, frozen, thawed string, done func() bool, err error) {
	if p := paths["freezer"]; p != "" {
		file, frozen, thawed = filepath.Join(p, "freezer.state"), "FROZEN", "THAWED"
		done = func() bool {
			b, err := os.ReadFile(file)
			return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
		}
	} else if p := paths[""]; p != "" {
		file, frozen, thawed = filepath.Join(p, "cgroup.freeze"), "1", "0"
		events := filepath.Join(p, "cgroup.events")
		done = func() bool {
			b, err := os.ReadFile(events)
			return err == nil && strings.Contains(string(b), "frozen 1")
		}
	} else {
		return "", "", "", nil, ErrNoFreezer
	}
	if _, err := os.Stat(file); err != nil {
		return "", "", "", nil, ErrNoFreezer
	}
	return file, frozen, thawed, done, nil
}

// Freeze freezes the processes of a container's cgroup (v1 freezer or
// v2 cgroup.freeze), as docker pause does, waits until they are, and
// returns the function that thaws them.
func Freeze(paths map[string]string, timeout time.Duration) (func() error, error) {
	file, frozen, thawed, done, err := freezerFile(paths)
	if err != nil {
		return nil, err
	}
	thaw := func() error { return os.WriteFile(file, []byte(thawed), 0o644) }
	if err := os.WriteFile(file, []byte(frozen), 0o644); err != nil {
		return nil, fmt.Errorf("freeze its cgroup: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			_ = thaw()
			return nil, fmt.Errorf("its cgroup did not freeze within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return thaw, nil
}

// Thaw thaws a container's cgroup.
func Thaw(paths map[string]string) error {
	file, _, thawed, _, err := freezerFile(paths)
	if err != nil {
		return err
	}
	return os.WriteFile(file, []byte(thawed), 0o644)
}

// Frozen reports whether a container's cgroup is frozen.
func Frozen(paths map[string]string) bool {
	_, _, _, done, err := freezerFile(paths)
	return err == nil && done()
}
