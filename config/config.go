// Package config reads Moss's TOML configuration: the site file
// (/etc/moss/moss.toml) and then the user's (~/.config/moss/moss.toml), the
// later overriding the earlier key by key. It owns decoding and validation
// only; it must not act on the values.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// SiteFile is the administrator's configuration file.
const SiteFile = "/etc/moss/moss.toml"

// Config is Moss's effective configuration.
type Config struct {
	Storage Storage `toml:"storage"`
	Network Network `toml:"network"`
	IDMap   IDMap   `toml:"idmap"`
	Runtime Runtime `toml:"runtime"`
	Plugins Plugins `toml:"plugins"`
	// Registries configures image registries (pull, push, login).
	Registries Registries `toml:"registries"`
	// Cgroups says which cgroups containers get and what a limit that
	// cannot be applied does.
	Cgroups Cgroups `toml:"cgroups"`

	// Files lists the configuration files that were read, in order.
	Files []string `toml:"-"`
}

// Storage configures containers/storage.
type Storage struct {
	// Driver is "overlay", "fuse-overlayfs" or "vfs"; empty picks the first
	// that works in that order.
	Driver string `toml:"driver"`
	// GraphRoot holds image layers; it must be on a local file system.
	GraphRoot string `toml:"graph_root"`
	// RunRoot holds per-boot storage state.
	RunRoot string `toml:"run_root"`
	// Options are passed to the storage driver unchanged.
	Options []string `toml:"options"`
}

// Network configures the rootless network of the namespace holder.
type Network struct {
	// Driver is the holder's outbound network driver: "auto" (default:
	// pasta, then slirp4netns when installed, then the in-process
	// gvisor-tap-vsock when compiled in), "pasta", "slirp4netns",
	// "gvisor-tap-vsock" or "none".
	Driver string `toml:"driver"`
	// PortDriver is "builtin" (default) or "none".
	PortDriver string `toml:"port_driver"`
	// CIDR is the holder's own network (default 10.0.2.0/24).
	CIDR string `toml:"cidr"`
	// MTU of the holder's interface; 0 picks the driver's default.
	MTU int `toml:"mtu"`
}

// IDMap configures the user namespace's ID mapping.
type IDMap struct {
	// Source is "auto" (subordinate IDs when the user has them, else a
	// single-ID mapping), "subuid" (require them) or "single".
	Source string `toml:"source"`
}

// Runtime configures the container runtime.
type Runtime struct {
	// Seccomp applies Docker's default seccomp profile (default true).
	Seccomp *bool `toml:"seccomp"`
	// Seccomp32 keeps the 32-bit x86 ABI in the profile (default false:
	// each architecture costs every container start ~16 ms of compiling).
	Seccomp32 bool `toml:"seccomp_32bit"`
	// WarmStarts makes the next container of the image and options last
	// started in advance (default true; agent/warm.go).
	WarmStarts *bool `toml:"warm_starts"`
	// FastExec starts an exec's process without libcontainer's init
	// (default true; internal/cexec). Off, every exec is libcontainer's.
	FastExec *bool `toml:"fast_exec"`
}

// Plugins configures third-party plugins.
type Plugins struct {
	// Dirs are directories whose executables are started as plugins,
	// besides the per-user directory (~/.local/share/moss/plugins).
	Dirs []string `toml:"dirs"`
	// Options are handed to each plugin by name at its start:
	// [plugins.options.NAME] key = "value".
	Options map[string]map[string]string `toml:"options"`
	// HandshakeTimeout bounds a plugin's start ("10s" by default).
	HandshakeTimeout string `toml:"handshake_timeout"`
}

// Registries configures where short image names are looked for and which
// registries may be reached over plain HTTP.
type Registries struct {
	// Search are the registries (host[:port]) a short name such as
	// "busybox" is looked for in, as Podman's unqualified-search-registries.
	// Empty (the default), short names are refused: pull a fully
	// qualified name (docker.io/library/busybox). With several, a pull
	// from a terminal asks which one; without a terminal it is refused as
	// ambiguous.
	Search []string `toml:"search"`
	// Insecure are registries reached over plain HTTP (or HTTPS without
	// certificate checks): "host:port", "host" (any port) or a CIDR range
	// of addresses. Loopback registries (localhost, 127.0.0.0/8, ::1) are
	// always allowed.
	Insecure []string `toml:"insecure"`
}

// Cgroups configures the cgroups of containers. Rootless, Moss can use
// only cgroups delegated to the user.
type Cgroups struct {
	// V2 is a writable cgroup v2 directory (not holding processes itself)
	// whose children the containers' cgroups become. Empty (the
	// default): on a cgroup v2 host, the subtree systemd delegated to the
	// user, with a "moss" cgroup in it.
	V2 string `toml:"v2"`
	// V1 names, by controller (memory, cpu, cpuacct, cpuset, pids, blkio,
	// freezer), a cgroup v1 directory an administrator delegated to the
	// user (it and its files chowned to them): v1 = { memory =
	// "/sys/fs/cgroup/memory/moss-alice", … }. cpuacct defaults to cpu's
	// directory where the two are mounted together. Setting it uses v1.
	V1 map[string]string `toml:"v1"`
	// Unsupported is what a limit does that no delegated controller can
	// apply: "error" (the default: the container is not created or
	// started, with the reason and the fix) or "warn" (it runs without
	// that limit, and the create answer and the agent's log say so).
	Unsupported string `toml:"unsupported"`
}

// CgroupV1Controllers are the keys cgroups.v1 takes.
var CgroupV1Controllers = []string{"blkio", "cpu", "cpuacct", "cpuset", "freezer", "memory", "pids"}

// Warn reports whether limits that cannot be applied only warn.
func (c Cgroups) Warn() bool { return c.Unsupported == "warn" }

func (c Cgroups) validate() error {
	switch c.Unsupported {
	case "", "error", "warn":
	default:
		return fmt.Errorf("cgroups.unsupported %q: must be error or warn", c.Unsupported)
	}
	if c.V2 != "" && !filepath.IsAbs(c.V2) {
		return fmt.Errorf("cgroups.v2 %q: must be an absolute path", c.V2)
	}
	if c.V2 != "" && len(c.V1) > 0 {
		return fmt.Errorf("cgroups.v2 %q and cgroups.v1: set one of them", c.V2)
	}
	keys := make([]string, 0, len(c.V1))
	for k := range c.V1 {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, c := range CgroupV1Controllers {
			known = known || c == k
		}
		if !known {
			return fmt.Errorf("cgroups.v1 key %q: must be one of %s", k, strings.Join(CgroupV1Controllers, ", "))
		}
		if v := c.V1[k]; !filepath.IsAbs(v) {
			return fmt.Errorf("cgroups.v1.%s %q: must be an absolute path", k, v)
		}
	}
	return nil
}

// Timeout is HandshakeTimeout parsed (validate has checked it).
func (p Plugins) Timeout() time.Duration {
	d, _ := time.ParseDuration(p.HandshakeTimeout)
	return d
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Network: Network{Driver: "auto", PortDriver: "builtin", CIDR: "10.0.2.0/24"},
		IDMap:   IDMap{Source: "auto"},
	}
}

// SeccompEnabled reports whether the default seccomp profile is wanted.
func (r Runtime) SeccompEnabled() bool { return onByDefault(r.Seccomp) }

// WarmStartsEnabled says whether warm starts are on (the default).
func (r Runtime) WarmStartsEnabled() bool { return onByDefault(r.WarmStarts) }

// FastExecEnabled says whether the fast exec is on (the default).
func (r Runtime) FastExecEnabled() bool { return onByDefault(r.FastExec) }

// onByDefault is a setting that is on unless set to false.
func onByDefault(b *bool) bool { return b == nil || *b }

// Load reads the site file and then userFile (either may be absent) over the
// defaults and validates the result.
func Load(userFile string) (Config, error) {
	c := Default()
	for _, f := range []string{SiteFile, userFile} {
		if f == "" {
			continue
		}
		read, err := decodeFile(f, &c)
		if err != nil {
			return Config{}, err
		}
		if read {
			c.Files = append(c.Files, f)
		}
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// UserFile is the per-user configuration file below configDir.
func UserFile(configDir string) string { return filepath.Join(configDir, "moss.toml") }

func decodeFile(path string, c *Config) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return false, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		key := und[0].String()
		return false, fmt.Errorf("config %s: unknown key %q; known keys: %s", path, key, strings.Join(knownKeys(), ", "))
	}
	return true, nil
}

func knownKeys() []string {
	keys := []string{
		"storage.driver", "storage.graph_root", "storage.run_root", "storage.options",
		"network.driver", "network.port_driver", "network.cidr", "network.mtu",
		"idmap.source", "runtime.seccomp", "runtime.seccomp_32bit",
		"plugins.dirs", "plugins.options.NAME", "plugins.handshake_timeout",
		"registries.search", "registries.insecure",
		"cgroups.v2", "cgroups.v1", "cgroups.unsupported",
	}
	sort.Strings(keys)
	return keys
}

func (c Config) validate() error {
	if err := c.Storage.validate(); err != nil {
		return err
	}
	if err := c.Network.validate(); err != nil {
		return err
	}
	if err := c.Plugins.validate(); err != nil {
		return err
	}
	if err := c.Registries.validate(); err != nil {
		return err
	}
	if err := c.Cgroups.validate(); err != nil {
		return err
	}
	return c.IDMap.validate()
}

func (p Plugins) validate() error {
	for _, d := range p.Dirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("plugins.dirs %q: must be an absolute path", d)
		}
	}
	if p.HandshakeTimeout != "" {
		if d, err := time.ParseDuration(p.HandshakeTimeout); err != nil || d <= 0 {
			return fmt.Errorf("plugins.handshake_timeout %q: want a duration such as 10s", p.HandshakeTimeout)
		}
	}
	return nil
}

// registryHost matches a registry's host[:port]: a DNS name or IPv4
// address, or an IPv6 address in brackets, and an optional port.
var registryHost = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$`)

func (r Registries) validate() error {
	for _, s := range r.Search {
		if !registryHost.MatchString(s) {
			return fmt.Errorf("registries.search %q: want a registry host[:port] such as registry.example.com or 127.0.0.1:5000, without a scheme or path", s)
		}
	}
	for _, s := range r.Insecure {
		if _, _, err := net.ParseCIDR(s); err == nil {
			continue
		}
		if !registryHost.MatchString(s) {
			return fmt.Errorf("registries.insecure %q: want a registry host[:port] or a CIDR range such as 10.0.0.0/8, without a scheme or path", s)
		}
	}
	return nil
}

func (s Storage) validate() error {
	switch s.Driver {
	case "", "overlay", "fuse-overlayfs", "vfs":
	default:
		return fmt.Errorf("storage.driver %q: must be overlay, fuse-overlayfs or vfs", s.Driver)
	}
	for _, p := range []struct{ key, v string }{{"storage.graph_root", s.GraphRoot}, {"storage.run_root", s.RunRoot}} {
		if p.v != "" && !filepath.IsAbs(p.v) {
			return fmt.Errorf("%s %q: must be an absolute path", p.key, p.v)
		}
	}
	return nil
}

func (n Network) validate() error {
	switch n.Driver {
	case "auto", "gvisor-tap-vsock", "slirp4netns", "pasta", "none":
	default:
		return fmt.Errorf("network.driver %q: must be auto, pasta, slirp4netns, gvisor-tap-vsock or none", n.Driver)
	}
	switch n.PortDriver {
	case "builtin", "none":
	default:
		return fmt.Errorf("network.port_driver %q: must be builtin or none", n.PortDriver)
	}
	if n.Driver == "none" && n.PortDriver != "none" {
		return fmt.Errorf("network.port_driver %q needs a network driver other than none", n.PortDriver)
	}
	if _, _, err := net.ParseCIDR(n.CIDR); err != nil {
		return fmt.Errorf("network.cidr %q: %v", n.CIDR, err)
	}
	if n.MTU < 0 || (n.MTU > 0 && n.MTU < 1280) || n.MTU > 65520 {
		return fmt.Errorf("network.mtu %d: must be 0 (default) or between 1280 and 65520", n.MTU)
	}
	return nil
}

func (i IDMap) validate() error {
	switch i.Source {
	case "auto", "subuid", "single":
		return nil
	}
	return fmt.Errorf("idmap.source %q: must be auto, subuid or single", i.Source)
}
