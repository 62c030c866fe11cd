// Package cgroup finds the cgroups an unprivileged user may use — a
// delegated cgroup v2 subtree (the user's systemd subtree or one the
// configuration names), or cgroup v1 hierarchies an administrator
// delegated controller by controller — and creates, limits, freezes and
// reads the cgroups of containers inside them. It must not start
// processes, and knows containers only by their IDs and cgroup paths.
// It is linked into the shim (Join), so it imports nothing heavier than
// the cgroup library libcontainer already uses.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Controllers Moss knows, in the names of the hierarchy in use: v1 has
// blkio, cpuacct and freezer where v2 has io and the core cgroup.freeze.
var (
	V1Controllers = []string{"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer"}
	V2Controllers = []string{"memory", "cpu", "cpuset", "pids", "io"}
)

// ErrUnsupported marks a limit that the delegated cgroups cannot apply.
var ErrUnsupported = errors.New("cgroup controller not available")

// Options say where to look for cgroups.
type Options struct {
	// Root is the cgroup file system's mount point (/sys/fs/cgroup).
	Root string
	// V2 names a writable cgroup v2 directory whose children the
	// containers' cgroups become; empty looks for the subtree systemd
	// delegated to the user (the highest writable ancestor of the
	// process's own cgroup) and makes "moss" in it.
	V2 string
	// V1 names, by controller, a writable cgroup v1 directory under
	// which containers' cgroups are made.
	V1 map[string]string
	// SelfCgroup is the content of /proc/self/cgroup (read when empty).
	SelfCgroup string
	// Writable reports whether the user may create cgroups in dir and
	// move processes into them (by default: access(2) with W_OK on the
	// directory and its cgroup.procs). Tests replace it.
	Writable func(dir string) bool
}

// Setup is what Discover found: the hierarchy and the controllers the
// containers' cgroups get.
type Setup struct {
	// Version is 2 or 1, or 0 when there is no usable cgroup at all.
	Version int
	// Parent is the cgroup v2 directory the containers' cgroups go in.
	Parent string
	// V1 is the parent directory by controller on cgroup v1.
	V1 map[string]string
	// Controllers are those available to the containers' cgroups.
	Controllers []string
	// Reason says why controllers are missing, with the fix.
	Reason string
}

// Has reports whether controller c is available.
func (s *Setup) Has(c string) bool { return s != nil && slices.Contains(s.Controllers, c) }

// Paths returns the cgroup paths of container id: by controller on v1,
// "" the unified one on v2; nil without cgroups.
func (s *Setup) Paths(id string) map[string]string {
	switch {
	case s == nil:
		return nil
	case s.Version == 2:
		return map[string]string{"": filepath.Join(s.Parent, id)}
	case s.Version == 1:
		m := map[string]string{}
		for c, p := range s.V1 {
			m[c] = filepath.Join(p, id)
		}
		return m
	}
	return nil
}

func defaultWritable(dir string) bool {
	return unix.Access(dir, unix.W_OK|unix.X_OK) == nil && unix.Access(filepath.Join(dir, "cgroup.procs"), unix.W_OK) == nil
}

// Discover finds the cgroups the user may use. It makes Moss's parent
// cgroup in a discovered v2 subtree and enables the controllers it can
// in the cgroup.subtree_control files from the delegated root down.
func Discover(o Options) *Setup {
	if o.Root == "" {
		o.Root = "/sys/fs/cgroup"
	}
	if o.Writable == nil {
		o.Writable = defaultWritable
	}
	if len(o.V1) > 0 {
		return discoverV1(o)
	}
	unified := fileExists(filepath.Join(o.Root, "cgroup.controllers"))
	if !unified && o.V2 == "" {
		reason := "the host mounts cgroup v1 and no delegated v1 subtree is configured: as root, make a directory per controller (e.g. /sys/fs/cgroup/memory/moss-$USER), chown it and its cgroup.procs, tasks and limit files to the user (hack/prepare-host.sh does) and name them in [cgroups] v1 of ~/.config/moss/moss.toml"
		if fileExists(filepath.Join(o.Root, "unified", "cgroup.controllers")) {
			reason = "the host is in hybrid mode: every controller is bound to cgroup v1, so the v2 hierarchy has none; " + reason
		}
		return &Setup{Reason: reason}
	}
	return discoverV2(o)
}

func discoverV2(o Options) *Setup {
	var base, parent string
	if o.V2 != "" {
		base, parent = o.V2, o.V2
		if !o.Writable(base) {
			return &Setup{Reason: fmt.Sprintf("cgroups.v2 %q is not a writable cgroup directory: delegate it to the user (chown the directory, its cgroup.procs and cgroup.subtree_control)", base)}
		}
	} else {
		self := o.SelfCgroup
		if self == "" {
			b, err := os.ReadFile("/proc/self/cgroup")
			if err != nil {
				return &Setup{Reason: fmt.Sprintf("read /proc/self/cgroup: %v", err)}
			}
			self = string(b)
		}
		own := ""
		for _, line := range strings.Split(self, "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				own = p
			}
		}
		if own == "" {
			return &Setup{Reason: "no cgroup v2 entry in /proc/self/cgroup"}
		}
		// The highest writable ancestor is the delegated subtree
		// (user@UID.service under systemd).
		for d := filepath.Join(o.Root, own); strings.HasPrefix(d, o.Root) && d != o.Root; d = filepath.Dir(d) {
			if !o.Writable(d) {
				break
			}
			base = d
		}
		if base == "" {
			return &Setup{Reason: "no delegated cgroup v2 subtree: the process's own cgroup is not writable; log in through a systemd user session (user@.service delegates a subtree), run the agent as its unit (contrib/), or name a delegated directory in cgroups.v2"}
		}
		parent = filepath.Join(base, "moss")
	}
	if err := EnsureParent(base, parent); err != nil {
		return &Setup{Reason: fmt.Sprintf("prepare cgroup %s: %v", parent, err)}
	}
	s := &Setup{Version: 2, Parent: parent}
	for _, c := range readList(filepath.Join(parent, "cgroup.subtree_control")) {
		if slices.Contains(V2Controllers, c) {
			s.Controllers = append(s.Controllers, c)
		}
	}
	sort.Strings(s.Controllers)
	if missing := missingOf(V2Controllers, s.Controllers); len(missing) > 0 {
		s.Reason = fmt.Sprintf("the delegated subtree %s does not offer %s: the controllers a user gets are those its parent enables (systemd: Delegate= of user@.service, e.g. a drop-in with Delegate=cpu cpuset io memory pids)", base, strings.Join(missing, ", "))
	}
	return s
}

// EnsureParent makes parent (base or below it) and enables, from base
// down to parent, every controller each level offers in its
// cgroup.subtree_control, so that parent's children get them. Failing
// controllers are left out, not errors: Discover reports what is there.
func EnsureParent(base, parent string) error {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(base, parent)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s is not below %s", parent, base)
	}
	dirs := []string{base}
	if rel != "." {
		d := base
		for _, e := range strings.Split(rel, string(filepath.Separator)) {
			d = filepath.Join(d, e)
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		enabled := readList(filepath.Join(d, "cgroup.subtree_control"))
		for _, c := range readList(filepath.Join(d, "cgroup.controllers")) {
			if slices.Contains(enabled, c) || !slices.Contains(V2Controllers, c) {
				continue
			}
			// One by one: a write naming a controller the kernel
			// refuses fails as a whole.
			if err := appendLine(filepath.Join(d, "cgroup.subtree_control"), "+"+c); err == nil {
				enabled = append(enabled, c)
			}
		}
	}
	return nil
}

func discoverV1(o Options) *Setup {
	s := &Setup{Version: 1, V1: map[string]string{}}
	var bad []string
	for c, p := range o.V1 {
		if !o.Writable(p) {
			bad = append(bad, fmt.Sprintf("%s (%s is not a writable cgroup directory)", c, p))
			continue
		}
		s.V1[c] = p
	}
	// cpu and cpuacct are mounted together on most hosts.
	if p, ok := s.V1["cpu"]; ok {
		if _, set := o.V1["cpuacct"]; !set && fileExists(filepath.Join(p, "cpuacct.usage")) {
			s.V1["cpuacct"] = p
		}
	}
	for c := range s.V1 {
		s.Controllers = append(s.Controllers, c)
	}
	sort.Strings(s.Controllers)
	if len(s.Controllers) == 0 {
		s.Version = 0
	}
	missing := missingOf(V1Controllers, s.Controllers)
	switch {
	case len(bad) > 0:
		sort.Strings(bad)
		s.Reason = "unusable cgroups.v1 entries: " + strings.Join(bad, ", ") + "; as root, make the directory and chown it and its files to the user (hack/prepare-host.sh does)"
	case len(missing) > 0:
		s.Reason = "cgroups.v1 names no directory for " + strings.Join(missing, ", ")
	}
	return s
}

// Describe says, controller by controller, what the containers get.
func (s *Setup) Describe() string {
	switch {
	case s == nil || s.Version == 0:
		return "none"
	case s.Version == 2:
		return fmt.Sprintf("v2 in %s: %s", s.Parent, strings.Join(s.Controllers, " "))
	}
	var parts []string
	for _, c := range s.Controllers {
		parts = append(parts, c+"="+s.V1[c])
	}
	return "v1: " + strings.Join(parts, " ")
}

func missingOf(all, have []string) []string {
	var out []string
	for _, c := range all {
		if !slices.Contains(have, c) {
			out = append(out, c)
		}
	}
	return out
}

func readList(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range strings.Fields(string(b)) {
		out = append(out, strings.TrimPrefix(f, "+"))
	}
	return out
}

// appendLine writes s to a cgroup file as the kernel wants it, one
// write; on a plain file (tests) it is appended, as the kernel's
// subtree_control would list it.
func appendLine(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
