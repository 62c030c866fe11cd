// Package spec turns a container's Docker-shaped configuration into an OCI
// runtime spec with Docker's defaults: namespaces, the minimal /dev, masked
// and read-only /proc paths, the default capability set and seccomp profile.
// It owns those defaults; it must not start processes or touch storage.
package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultCaps is Docker's default capability set.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// maskedPaths and readonlyPaths are Docker's defaults for unprivileged
// containers.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// Input is what a spec is built from.
type Input struct {
	ID     string
	Rootfs string
	// Config and Host are the container's stored configuration, with the
	// image's defaults (Env, Cmd, Entrypoint, WorkingDir, User) merged in.
	Config *container.Config
	Host   *container.HostConfig
	// EtcDir holds the generated hostname, hosts and resolv.conf.
	EtcDir string
	// SingleID is set when the user namespace maps only one ID, so mount
	// options naming other IDs (devpts gid=5) must be left out.
	SingleID bool
	// Seccomp applies Docker's default profile (unless privileged or
	// seccomp=unconfined).
	Seccomp bool
	// Seccomp32 keeps the 32-bit x86 ABI in the profile.
	Seccomp32 bool
	// InitBinary, with Host.Init, is bind-mounted as InitPath and runs the
	// command as its child (internal/mossinit).
	InitBinary string
	// NetNS is the network namespace: "" for a new one (with only lo),
	// HostNetNS for the host's, else the path of one to join.
	NetNS string
	// MaxGID is the highest group ID the user namespace maps: the kernel
	// takes no ping_group_range beyond it.
	MaxGID uint32
	// Mounts are the container's volumes, bind mounts and tmpfs mounts,
	// in order. One over /dev/shm or a generated /etc file replaces it.
	Mounts []specs.Mount
}

// HostNetNS in Input.NetNS keeps the container in the host's network.
const HostNetNS = "host"

// ErrInvalid marks configuration errors caused by the user's input.
var ErrInvalid = errors.New("invalid container configuration")

// Build returns the OCI spec for in.
func Build(in Input) (*specs.Spec, error) {
	cfg, host := in.Config, in.Host
	if host == nil {
		host = &container.HostConfig{}
	}
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: no command specified", ErrInvalid)
	}
	withInit := host != nil && host.Init != nil && *host.Init
	if withInit {
		if in.InitBinary == "" {
			return nil, fmt.Errorf("%w: --init: no init binary", ErrInvalid)
		}
		args = append([]string{InitPath, "--"}, args...)
	}
	u, err := resolveUser(in.Rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	env := withDefaults(cfg.Env, cfg.Hostname, u.Home)
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	caps, err := capabilities(host)
	if err != nil {
		return nil, err
	}
	noNewPriv, unconfined, err := securityOpts(host)
	if err != nil {
		return nil, err
	}
	rlimits, err := Rlimits(host.Ulimits)
	if err != nil {
		return nil, err
	}
	seccompOn := in.Seccomp && !host.Privileged && !unconfined
	hostname := cfg.Hostname
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: hostname,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: host.ReadonlyRootfs},
		Process: &specs.Process{
			Args:            args,
			Env:             env,
			Cwd:             cwd,
			User:            specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid), AdditionalGids: additionalGids(u.Sgids)},
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: noNewPriv,
			Rlimits:         rlimits,
			Terminal:        cfg.Tty,
		},
		Mounts: mounts(in, host, withInit),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.CgroupNamespace},
			},
			Resources: &specs.LinuxResources{},
		},
	}
	switch in.NetNS {
	case HostNetNS:
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	case "":
	default:
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = in.NetNS
			}
		}
	}
	if in.NetNS != HostNetNS {
		// As docker: ping without privileges, ports below 1024 without
		// CAP_NET_BIND_SERVICE (the namespace is the container's own).
		s.Linux.Sysctl = map[string]string{
			"net.ipv4.ping_group_range":           fmt.Sprintf("0 %d", in.MaxGID),
			"net.ipv4.ip_unprivileged_port_start": "0",
		}
	}
	for k, v := range host.Sysctls {
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		s.Linux.Sysctl[k] = v
	}
	if !host.Privileged {
		s.Linux.MaskedPaths = maskedPaths
		s.Linux.ReadonlyPaths = readonlyPaths
	}
	if seccompOn {
		prof, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		s.Linux.Seccomp = nativeArches(prof, in.Seccomp32)
	}
	return s, nil
}

// securityOpts reads --security-opt: no-new-privileges, and whether
// seccomp is unconfined; label and apparmor options are accepted and
// ignored (no SELinux or AppArmor in rootless Moss), like Podman does.
func securityOpts(host *container.HostConfig) (noNewPriv, unconfined bool, err error) {
	for _, opt := range host.SecurityOpt {
		k, v, _ := strings.Cut(strings.ReplaceAll(opt, ":", "="), "=")
		switch {
		case k == "no-new-privileges" && (v == "" || v == "true"):
			noNewPriv = true
		case k == "no-new-privileges" && v == "false":
		case k == "seccomp" && v == "unconfined":
			unconfined = true
		case k == "label" || k == "apparmor":
		default:
			return false, false, fmt.Errorf("%w: unsupported --security-opt %q (supported: no-new-privileges, seccomp=unconfined)", ErrInvalid, opt)
		}
	}
	return noNewPriv, unconfined, nil
}

// ExecRequest is what an exec asks for beyond the container's own process.
type ExecRequest struct {
	Args       []string
	Env        []string // added to (and overriding) the container's
	User       string   // USER[:GROUP]; empty: the container's
	WorkingDir string   // empty: the container's
	Privileged bool
}

// Exec returns the process of an exec in the container made from cfg and
// host, whose root file system is mounted at rootfs: the container's user,
// working directory, environment, capabilities and no-new-privileges,
// unless the request says otherwise, as docker exec does.
func Exec(rootfs string, cfg *container.Config, host *container.HostConfig, req ExecRequest) (*specs.Process, error) {
	if len(req.Args) == 0 {
		return nil, fmt.Errorf("%w: no exec command specified", ErrInvalid)
	}
	who := req.User
	if who == "" {
		who = cfg.User
	}
	u, err := resolveUser(rootfs, who)
	if err != nil {
		return nil, err
	}
	cwd := req.WorkingDir
	if cwd == "" {
		cwd = cfg.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	caps := allCaps()
	if !req.Privileged {
		if caps, err = capabilities(host); err != nil {
			return nil, err
		}
	}
	env := withDefaults(MergeEnv(cfg.Env, req.Env), cfg.Hostname, u.Home)
	nnp, _, err := securityOpts(host)
	if err != nil {
		return nil, err
	}
	return &specs.Process{
		Args: req.Args, Env: env, Cwd: cwd,
		User:            specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid), AdditionalGids: additionalGids(u.Sgids)},
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		NoNewPrivileges: nnp,
	}, nil
}

// MergeEnv returns the KEY=VALUE entries of base and then over, a later
// entry replacing an earlier one of the same key in its place.
func MergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	idx := map[string]int{}
	for _, list := range [][]string{base, over} {
		for _, e := range list {
			k, _, _ := strings.Cut(e, "=")
			if i, ok := idx[k]; ok {
				out[i] = e
				continue
			}
			idx[k] = len(out)
			out = append(out, e)
		}
	}
	return out
}

// nativeArches keeps only the native architecture in the profile (and the
// 32-bit x86 ABI when compat is set). libseccomp compiles every architecture
// of the profile at each container start, in the container's init: with
// x86_64, x86 and x32 the start took 75 ms here, without x32 45 ms, with
// x86_64 alone 29 ms (27 ms without seccomp). System calls of a left-out ABI
// are refused like any foreign architecture's; 32-bit binaries then need
// runtime.seccomp_32bit = true.
func nativeArches(p *specs.LinuxSeccomp, compat bool) *specs.LinuxSeccomp {
	archs := p.Architectures[:0]
	for i, a := range p.Architectures {
		if i == 0 || (compat && a == specs.ArchX86) {
			archs = append(archs, a)
		}
	}
	p.Architectures = archs
	return p
}

func withDefaults(env []string, hostname, home string) []string {
	out := make([]string, 0, len(env)+3)
	have := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		have[k] = true
	}
	if !have["PATH"] {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !have["HOSTNAME"] && hostname != "" {
		out = append(out, "HOSTNAME="+hostname)
	}
	out = append(out, env...)
	if !have["HOME"] {
		if home == "" {
			home = "/"
		}
		out = append(out, "HOME="+home)
	}
	return out
}

func additionalGids(g []int) []uint32 {
	out := make([]uint32, 0, len(g))
	for _, id := range g {
		out = append(out, uint32(id))
	}
	return out
}

// resolveUser looks USER[:GROUP] up in the container's own passwd and group
// files, resolved inside the rootfs so that symlinks cannot point outside.
func resolveUser(rootfs, spec string) (*user.ExecUser, error) {
	defaults := &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	u, err := user.GetExecUserPath(spec, defaults, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("%w: unable to find user %s: %v", ErrInvalid, spec, err)
	}
	return u, nil
}

func capabilities(host *container.HostConfig) ([]string, error) {
	if host.Privileged {
		return allCaps(), nil
	}
	set := map[string]bool{}
	for _, c := range DefaultCaps {
		set[c] = true
	}
	norm := func(c string) (string, error) {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			return c, nil
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		for _, k := range allCaps() {
			if k == c {
				return c, nil
			}
		}
		return "", fmt.Errorf("%w: unknown capability %q", ErrInvalid, c)
	}
	for _, c := range host.CapDrop {
		n, err := norm(c)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			set = map[string]bool{}
			continue
		}
		delete(set, n)
	}
	for _, c := range host.CapAdd {
		n, err := norm(c)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			for _, k := range allCaps() {
				set[k] = true
			}
			continue
		}
		set[n] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

func allCaps() []string { return capNames }

// InitPath is where `run --init` finds its init in the container.
const InitPath = "/sbin/moss-init"

// sysMount is a fresh sysfs, which the kernel allows only in a network
// namespace of the user namespace; in the host's network it is the host's
// /sys bound read-only, as runc's rootless conversion does.
func sysMount(in Input, opts []string) specs.Mount {
	if in.NetNS == HostNetNS {
		return specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: append([]string{"rbind"}, opts...)}
	}
	return specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: opts}
}

func mounts(in Input, host *container.HostConfig, withInit bool) []specs.Mount {
	ptsOpts := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
	if !in.SingleID {
		ptsOpts = append(ptsOpts, "gid=5")
	}
	shmSize := "65536k"
	if host.ShmSize > 0 {
		shmSize = fmt.Sprintf("%dk", host.ShmSize/1024)
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if host.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev"}
	}
	m := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: ptsOpts},
		sysMount(in, sysOpts),
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + shmSize}},
	}
	taken := func(dest string) bool {
		return slices.ContainsFunc(in.Mounts, func(u specs.Mount) bool { return u.Destination == dest })
	}
	m = slices.DeleteFunc(m, func(d specs.Mount) bool { return d.Destination == "/dev/shm" && taken(d.Destination) })
	m = append(m, in.Mounts...)
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if taken("/etc/" + f) {
			continue
		}
		m = append(m, specs.Mount{
			Destination: "/etc/" + f, Type: "bind", Source: filepath.Join(in.EtcDir, f),
			Options: []string{"rbind", "rprivate", "nosuid", "nodev"},
		})
	}
	if withInit {
		m = append(m, specs.Mount{Destination: InitPath, Type: "bind", Source: in.InitBinary,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	return m
}

// Etc is what the container's /etc/hostname, hosts and resolv.conf say.
type Etc struct {
	Hostname   string
	ExtraHosts []string // NAME:IP
	// Addresses are the container's own, which hosts gives its hostname.
	Addresses                  []string
	DNS, DNSSearch, DNSOptions []string
	// HostFiles copies the host's hosts and resolv.conf (host network).
	HostFiles bool
}

// WriteEtc writes the container's hostname, hosts and resolv.conf into dir.
// Without name servers of its own, resolv.conf follows Docker for
// containers without a network: the host's name servers minus loopback
// ones, else public defaults.
func WriteEtc(dir string, e Etc) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	resolv := ""
	if e.HostFiles {
		if data, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(data)
			if !strings.HasSuffix(hosts, "\n") {
				hosts += "\n"
			}
		}
		if data, err := os.ReadFile("/etc/resolv.conf"); err == nil && len(e.DNS)+len(e.DNSSearch)+len(e.DNSOptions) == 0 {
			resolv = string(data)
		}
	}
	for _, h := range e.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("%w: bad --add-host %q: want NAME:IP", ErrInvalid, h)
		}
		hosts += ip + "\t" + name + "\n"
	}
	if !e.HostFiles {
		if len(e.Addresses) == 0 {
			hosts += "127.0.1.1\t" + e.Hostname + "\n"
		}
		for _, a := range e.Addresses {
			hosts += a + "\t" + e.Hostname + "\n"
		}
	}
	if resolv == "" {
		resolv = resolvConf(e.DNS, e.DNSSearch, e.DNSOptions)
	}
	for name, data := range map[string]string{"hostname": e.Hostname + "\n", "hosts": hosts, "resolv.conf": resolv} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func resolvConf(dns, search, options []string) string {
	var b strings.Builder
	if len(dns) == 0 {
		if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				f := strings.Fields(line)
				if len(f) >= 2 && f[0] == "nameserver" && !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
					dns = append(dns, f[1])
				}
				if len(f) >= 2 && f[0] == "search" && len(search) == 0 {
					search = f[1:]
				}
			}
		}
	}
	if len(dns) == 0 {
		dns = []string{"8.8.8.8", "8.8.4.4"}
	}
	for _, d := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String()
}

// Signal parses a signal name or number as Docker accepts it
// ("SIGTERM", "TERM", "15").
func Signal(s string) (unix.Signal, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return unix.SIGTERM, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("%w: invalid signal: %s", ErrInvalid, s)
		}
		return unix.Signal(n), nil
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if sig := unix.SignalNum(s); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%w: invalid signal: %s", ErrInvalid, s)
}
