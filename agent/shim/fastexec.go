package shim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/internal/atomicfile"
	"github.com/moss-containers/moss/internal/cexec"
)

// fastExec is what the fast exec (internal/cexec) needs of a container,
// read once from libcontainer's state, and kept by the launcher until the
// container's state changes (a restart). The fast exec starts an exec's
// process from the agent itself; libcontainer's exec starts a helper, and
// its init (a Go process) for each exec, which compiles the container's
// seccomp profile again: 14 ms of an exec here, against about one for the
// fast one. A terminal, and what the fast exec does not do, go to
// libcontainer's.
type fastExec struct {
	id        string
	initPid   int
	initStart uint64
	ns        []nsPath
	filter    *cexec.Filter
	capNums   map[string]int // by name
	lastCap   int
	// From the container's configuration.
	rootlessEUID, noNewKeyring bool
	umask                      *uint32
	caps                       *configs.Capabilities
	rlimits                    []cexec.Rlimit
}

type nsPath struct {
	typ  int
	name string
	path string
}

// The fast exec's process shares the agent's memory until its exec, in
// the container's PID namespace: a process of the container that may
// trace it (CAP_SYS_PTRACE, in the user namespace containers share with
// the agent) could reach the agent's memory through it. So a container
// whose processes may have that capability never has the fast exec: one
// started with it, and one that an exec was given it in (--privileged;
// PtraceMarker records that, until the container goes).
const ptraceCap = "CAP_SYS_PTRACE"

// PtraceMarker is the file that says an exec of container id could trace
// (beside its libcontainer directory; removed with the container).
func PtraceMarker(runcRoot, id string) string { return filepath.Join(runcRoot, id) + ".ptrace" }

func mayTrace(caps []string) bool { return slices.Contains(caps, ptraceCap) }

// FilterCache is the file that keeps a container's compiled seccomp
// program for the next exec helpers: beside its libcontainer directory
// (which libcontainer must find empty to create it again, at a restart),
// in the runtime directory (a kernel of the next boot may support other
// filter flags). The agent removes it with the container.
func FilterCache(runcRoot, id string) string { return filepath.Join(runcRoot, id) + ".seccomp.json" }

type savedFilter struct {
	Profile string            `json:"profile"` // sha256 of the profile's JSON
	Flags   uint              `json:"flags"`
	Prog    []unix.SockFilter `json:"prog"`
}

// newFastExec reads what the fast exec needs of c; ErrUnsupported when
// its configuration has what only libcontainer's exec does.
func newFastExec(root string, c *libcontainer.Container) (*fastExec, error) {
	st, err := c.State()
	if err != nil {
		return nil, err
	}
	cfg := &st.Config
	if cfg.Namespaces.Contains(configs.NEWUSER) || cfg.Namespaces.Contains(configs.NEWTIME) ||
		cfg.OomScoreAdj != nil || cfg.Personality != nil || cfg.Scheduler != nil || cfg.IOPriority != nil ||
		cfg.ExecCPUAffinity != nil || cfg.IntelRdt != nil || cfg.MemoryPolicy != nil ||
		cfg.ProcessLabel != "" || cfg.AppArmorProfile != "" || st.InitProcessPid <= 0 ||
		cfg.Capabilities == nil || mayTrace(cfg.Capabilities.Bounding) {
		return nil, cexec.ErrUnsupported
	}
	f := &fastExec{id: c.ID(), initPid: st.InitProcessPid, initStart: st.InitProcessStartTime,
		rootlessEUID: cfg.RootlessEUID, noNewKeyring: cfg.NoNewKeyring, umask: cfg.Umask, caps: cfg.Capabilities}
	for _, r := range cfg.Rlimits {
		f.rlimits = append(f.rlimits, cexec.Rlimit{Type: r.Type, Soft: r.Soft, Hard: r.Hard})
	}
	// libcontainer's order: orderNamespacePaths.
	for _, t := range configs.NamespaceTypes() {
		if p := st.NamespacePaths[t]; p != "" && cfg.Namespaces.Contains(t) {
			ns := configs.Namespace{Type: t}
			f.ns = append(f.ns, nsPath{typ: ns.Syscall(), name: configs.NsName(t), path: p})
		}
	}
	if f.filter, err = containerFilter(FilterCache(root, c.ID()), cfg.Seccomp); err != nil {
		return nil, err
	}
	k, err := kernelCaps()
	if err != nil {
		return nil, err
	}
	f.capNums, f.lastCap = k.nums, k.last
	return f, nil
}

type capTable struct {
	nums map[string]int // by name, as libcontainer names them
	last int
}

// kernelCaps are the kernel's capabilities, as libcontainer maps them.
var kernelCaps = sync.OnceValues(func() (capTable, error) {
	last, err := capability.LastCap()
	if err != nil {
		return capTable{}, err
	}
	supported, err := capability.ListSupported()
	if err != nil {
		return capTable{}, err
	}
	t := capTable{nums: map[string]int{}, last: int(last)}
	for _, c := range supported {
		t.nums["CAP_"+strings.ToUpper(c.String())] = int(c)
	}
	return t, nil
})

// containerFilter is the seccomp program of profile: the one saved in
// path when it is of the same profile, else captured and saved there.
func containerFilter(path string, profile *configs.Seccomp) (*cexec.Filter, error) {
	if profile == nil {
		return nil, nil
	}
	js, err := json.Marshal(profile)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(js)
	key := hex.EncodeToString(sum[:])
	var saved savedFilter
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &saved) == nil && saved.Profile == key && len(saved.Prog) > 0 {
		return &cexec.Filter{Prog: saved.Prog, Flags: saved.Flags}, nil
	}
	f, err := cexec.CaptureFilter(profile)
	if err != nil {
		return nil, err
	}
	if b, err := json.Marshal(savedFilter{Profile: key, Flags: f.Flags, Prog: f.Prog}); err == nil {
		_ = atomicfile.WriteUnsynced(path, b) // a cache: the next helper captures it again
	}
	return f, nil
}

// process resolves sp for cexec.Start, with the namespaces opened (the
// caller closes them). It returns nil when sp needs libcontainer's exec:
// a terminal, an environment its init would change, or an init that is
// no longer the container's (libcontainer then says so).
func (f *fastExec) process(sp *specs.Process) (*cexec.Process, error) {
	if sp.Terminal || !plainEnv(sp.Env) {
		return nil, nil
	}
	p := &cexec.Process{
		Args: sp.Args, Env: sp.Env, Cwd: sp.Cwd, UID: sp.User.UID, GID: sp.User.GID, Groups: sp.User.AdditionalGids,
		SetGroups: !f.rootlessEUID, LastCap: f.lastCap, NoNewPrivileges: sp.NoNewPrivileges,
		Umask: f.umask, Seccomp: f.filter, Rlimits: f.rlimits,
	}
	if !f.noNewKeyring {
		p.SessionKeyring = "_ses." + f.id
	}
	caps := f.caps
	if sp.Capabilities != nil {
		caps = &configs.Capabilities{Bounding: sp.Capabilities.Bounding, Effective: sp.Capabilities.Effective, Permitted: sp.Capabilities.Permitted}
	}
	if caps != nil {
		for _, s := range []struct {
			names []string
			set   *cexec.CapSet
		}{{caps.Bounding, &p.Bounding}, {caps.Effective, &p.Effective}, {caps.Permitted, &p.Permitted}, {caps.Inheritable, &p.Inheritable}} {
			for _, name := range s.names {
				if n, ok := f.capNums[name]; ok { // libcontainer ignores the unknown
					s.set.Add(n)
				}
			}
		}
		if len(caps.Ambient) > 0 {
			return nil, nil
		}
	}
	for _, ns := range f.ns {
		fd, err := unix.Open(ns.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeNamespaces(p)
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				return nil, nil // the init is gone: libcontainer says so
			}
			return nil, &os.PathError{Op: "open", Path: ns.path, Err: err}
		}
		p.Namespaces = append(p.Namespaces, cexec.Namespace{Type: ns.typ, Name: ns.name, Fd: fd})
	}
	// The descriptors are of the init's namespaces only if it is still
	// the container's (its PID could be another process's by now).
	if !f.initRuns() {
		closeNamespaces(p)
		return nil, nil
	}
	return p, nil
}

// initRuns says the container's init is the process of its PID, as
// libcontainer checks it: the same start time, neither zombie nor dead
// (from /proc/PID/stat, read directly: libcontainer's reader opens a
// private procfs handle for each read, 0.3 ms).
func (f *fastExec) initRuns() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(f.initPid) + "/stat")
	if err != nil {
		return false
	}
	// After the command's name (in parentheses, perhaps with spaces):
	// the state (field 3), ..., the start time (field 22).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return false
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	return err == nil && start == f.initStart
}

func closeNamespaces(p *cexec.Process) {
	for _, ns := range p.Namespaces {
		unix.Close(ns.Fd)
	}
}

// plainEnv says env is as libcontainer's init leaves it (its prepareEnv):
// KEY=VALUE entries without duplicates or NULs, and a HOME.
func plainEnv(env []string) bool {
	seen := make(map[string]bool, len(env))
	home := false
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || seen[k] || strings.IndexByte(kv, 0) >= 0 {
			return false
		}
		seen[k] = true
		if k == "HOME" && v != "" {
			home = true
		}
	}
	return home
}

type fastEntry struct {
	f     *fastExec // nil: the container needs libcontainer's exec
	state os.FileInfo
}

// fastFor is the fast exec of container id, nil when it needs
// libcontainer's: kept while the container's state file is the same.
func (l *ExecLauncher) fastFor(root, id string) *fastExec {
	st, err := os.Stat(stateFile(root, id))
	if err != nil {
		return nil
	}
	if _, err := os.Lstat(PtraceMarker(root, id)); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l.mu.Lock()
	ent := l.fast[id]
	l.mu.Unlock()
	if ent != nil && sameState(st, ent.state) {
		return ent.f
	}
	ent = &fastEntry{state: st}
	if c, err := libcontainer.Load(root, id); err == nil {
		ent.f, _ = newFastExec(root, c) // else libcontainer's
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fast == nil {
		l.fast = map[string]*fastEntry{}
	}
	for other := range l.fast { // of removed containers
		if _, err := os.Stat(stateFile(root, other)); err != nil {
			delete(l.fast, other)
		}
	}
	l.fast[id] = ent
	return ent.f
}

// startFast starts sp with the fast exec; ok is false when it is
// libcontainer's to start.
func (l *ExecLauncher) startFast(root, id string, sp *specs.Process, cgroups map[string]string, stdin, stdout, stderr *os.File) (e *Exec, ok bool, err error) {
	if sp.Capabilities != nil && mayTrace(sp.Capabilities.Bounding) {
		// No fast exec in this container from now on: a marker, or no
		// exec at all.
		if err := os.WriteFile(PtraceMarker(root, id), nil, 0o600); err != nil {
			return nil, true, fmt.Errorf("mark the container for execs that may trace: %w", err)
		}
		return nil, false, nil
	}
	if sp.Terminal || l.Libcontainer {
		return nil, false, nil
	}
	f := l.fastFor(root, id)
	if f == nil {
		return nil, false, nil
	}
	p, err := f.process(sp)
	if err != nil || p == nil {
		return nil, err != nil, err
	}
	defer closeNamespaces(p)
	for _, dir := range cgroups {
		p.Cgroups = append(p.Cgroups, dir)
	}
	p.Stdin, p.Stdout, p.Stderr = stdin, stdout, stderr
	pid, err := cexec.Start(p)
	if err != nil {
		if !f.initRuns() { // it ended meanwhile: its PID namespace takes no one
			return nil, true, fmt.Errorf("container %s is not running", id)
		}
		return nil, true, fmt.Errorf("unable to start container process: %w", err)
	}
	return &Exec{fast: true, Pid: pid}, true, nil
}

// waitFast waits for the fast exec's process pid.
func waitFast(pid int) *ExitStatus {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		st := exitStatus(ws)
		if err != nil {
			st = ExitStatus{Code: 255, Error: err.Error()}
		}
		st.FinishedAt = time.Now().UTC()
		return &st
	}
}
