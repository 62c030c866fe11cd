package cgroup

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups"
)

// EnterSelf moves the calling process into the cgroups paths (by
// controller, "" the unified one) and returns the function that moves it
// back where it was. Processes it starts in between are born in paths: an
// exec helper's, which libcontainer starts in a running container's
// namespaces, is counted and limited with the container's own.
func EnterSelf(paths map[string]string) (back func(), err error) {
	pid := os.Getpid()
	from := map[string]string{}
	back = func() {
		for ctrl, p := range from {
			_ = cgroups.WriteCgroupProc(p, pid)
			delete(from, ctrl)
		}
	}
	for ctrl, p := range paths {
		if own, err := ownCgroup(ctrl); err == nil && own != p {
			from[ctrl] = own
		}
		if err := cgroups.WriteCgroupProc(p, pid); err != nil {
			back()
			return nil, fmt.Errorf("join the container's cgroup %s: %w", p, err)
		}
	}
	return back, nil
}

// ownCgroup is the directory of the caller's cgroup of controller ctrl.
func ownCgroup(ctrl string) (string, error) {
	if ctrl != "" {
		return cgroups.GetOwnCgroupPath(ctrl)
	}
	m, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	rel, ok := m[""]
	if !ok {
		return "", fmt.Errorf("no unified cgroup in /proc/self/cgroup")
	}
	return filepath.Join("/sys/fs/cgroup", rel), nil
}
