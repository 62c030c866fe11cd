// Package shim is the per-container supervisor. One shim process per
// container, in its own session, creates the container with libcontainer,
// holds its stdio, writes its json-file log, reaps it and records its exit
// status, so that containers outlive the agent. The package also holds the
// agent's client for talking to a shim over its unix socket. It must not
// touch storage or the agent's metadata.
package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/userns"
	_ "github.com/opencontainers/cgroups/devices" // device rules for cgroup v1 and v2
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/agent/cgroup"
	"github.com/moss-containers/moss/agent/spec"
	"github.com/moss-containers/moss/internal/atomicfile"
	"github.com/moss-containers/moss/internal/cexec"
)

// Role is the hidden argument that makes the binary run as a shim.
const Role = "__shim"

// warmArg starts a shim that waits for its options (Launcher).
const warmArg = "--warm"

// Files in a container's bundle directory.
const (
	SpecFile = "config.json"
	ExitFile = "exit.json"
	PidFile  = "shim.pid"
	LogFile  = "container.log"
	shimLog  = "shim.log"
)

// ExitStatus is how a container ended.
type ExitStatus struct {
	Code       int       `json:"code"`
	Signal     int       `json:"signal,omitempty"`
	OOMKilled  bool      `json:"oom_killed,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
	Error      string    `json:"error,omitempty"`
}

type request struct {
	Op string `json:"op"`
	// Len is the length of what follows a warm container's start request:
	// the stub's message (stubMessage).
	Len    int  `json:"len,omitempty"`
	Signal int  `json:"signal,omitempty"`
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	Height int  `json:"height,omitempty"`
	Width  int  `json:"width,omitempty"`
}

type response struct {
	Pid   int         `json:"pid,omitempty"`
	Error string      `json:"error,omitempty"`
	Exit  *ExitStatus `json:"exit,omitempty"`
}

// Options are passed to a shim on its command line.
type Options struct {
	ID       string
	Bundle   string
	RuncRoot string
	// Socket is the shim's unix socket; kept short (unix socket paths are
	// limited to 107 bytes), so it lives apart from the bundle.
	Socket string
	// LogMaxSize and LogMaxFiles configure json-file rotation.
	LogMaxSize  int64
	LogMaxFiles int
	// Stdin keeps the container's stdin open for attached clients (-i);
	// with StdinOnce it closes when the first of them ends its input.
	Stdin, StdinOnce bool
	// ConsoleHeight and ConsoleWidth size the TTY of a container whose
	// spec asks for a terminal.
	ConsoleHeight, ConsoleWidth uint16
	// Warm creates the container in advance (the agent's spare for the
	// next run of the same image and options): its first process is the
	// stub (internal/warmstub), which the start gives its command to.
	Warm bool
}

type shim struct {
	opts      Options
	container *libcontainer.Container
	process   *libcontainer.Process
	stdin     *os.File // the write end of the container's stdin, with Options.Stdin; with a TTY, the master
	stdout    *os.File // the read end of its stdout; with a TTY, the master
	stderr    *os.File // nil with a TTY
	tty       bool
	listener  *net.UnixListener
	// cgroups are the container's own (cgroup.File), removed when it ends.
	cgroups map[string]string
	// stub is the control socket of a warm container's stub, which the
	// supervisor gives the command (sv_start_stub).
	stub *os.File

	// attached and waiting are connections to hand over to the supervisor.
	attached []handedConn
	waiting  []*net.UnixConn
}

type handedConn struct {
	c                     *net.UnixConn
	stdin, stdout, stderr bool
}

// Main runs the shim role. args are: ID BUNDLE RUNCROOT SOCKET MAXSIZE MAXFILES.
// File descriptor 3 is the ready pipe: the shim writes one JSON response
// (the init's PID, or the error) and closes it. Once the container is
// started, the shim re-executes itself as the C supervisor (supervisor.go).
func Main(args []string) int {
	if len(args) > 0 && args[0] == execArg {
		return execMain(args[1:])
	}
	ready := os.NewFile(3, "ready")
	var o Options
	switch {
	case len(args) == 1 && args[0] == warmArg:
		// Started in advance: the options arrive on descriptor 4; the
		// agent closes it instead when it no longer needs this shim.
		ctl := os.NewFile(4, "options")
		line, err := bufio.NewReader(ctl).ReadBytes('\n')
		ctl.Close()
		if err != nil {
			return 0
		}
		if err := json.Unmarshal(line, &o); err != nil {
			writeResponse(ready, response{Error: "bad options: " + err.Error()})
			return 2
		}
	case len(args) == 6:
		o = Options{ID: args[0], Bundle: args[1], RuncRoot: args[2], Socket: args[3]}
		o.LogMaxSize, _ = strconv.ParseInt(args[4], 10, 64)
		o.LogMaxFiles, _ = strconv.Atoi(args[5])
	default:
		fmt.Fprintln(os.Stderr, "usage: __shim ID BUNDLE RUNCROOT SOCKET MAXSIZE MAXFILES")
		return 2
	}
	s := &shim{opts: o}
	if f, err := os.OpenFile(filepath.Join(s.opts.Bundle, shimLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		os.Stderr = f
		_ = syscall.Dup3(int(f.Fd()), 2, 0)
	}
	if err := s.create(); err != nil {
		writeResponse(ready, response{Error: err.Error()})
		ready.Close()
		return 1
	}
	pid, _ := s.process.Pid()
	_ = os.WriteFile(filepath.Join(s.opts.Bundle, PidFile), []byte(strconv.Itoa(os.Getpid())), 0o600)
	writeResponse(ready, response{Pid: pid})
	ready.Close()
	if s.opts.Warm {
		// The stub runs: the supervisor holds its control socket and
		// gives it the command at the start.
		err := s.handOff()
		fmt.Fprintf(os.Stderr, "shim: hand-off to the supervisor failed: %v\n", err)
		_ = s.container.Signal(syscall.SIGKILL)
		_ = s.container.Destroy()
		return 1
	}
	if err := s.serveUntilStart(); err != nil {
		fmt.Fprintf(os.Stderr, "shim: %v\n", err)
		_ = s.container.Signal(syscall.SIGKILL)
		_, _ = s.process.Wait()
		_ = s.container.Destroy()
		st := ExitStatus{Code: 255, FinishedAt: time.Now().UTC(), Error: err.Error()}
		b, _ := json.Marshal(st)
		_ = atomicfile.Write(filepath.Join(s.opts.Bundle, ExitFile), b)
		_ = os.Remove(s.opts.Socket)
		return 1
	}
	err := s.handOff()
	fmt.Fprintf(os.Stderr, "shim: hand-off to the supervisor failed: %v\n", err)
	return 1
}

// resize sets the size of the terminal whose master is f.
func resize(f *os.File, tty bool, height, width int) error {
	if !tty {
		return errors.New("the container has no TTY")
	}
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(height), Col: uint16(width)})
}

func writeResponse(w io.Writer, r response) {
	b, _ := json.Marshal(r)
	_, _ = w.Write(append(b, '\n'))
}

var traceStart = time.Now()

// trace logs phase timings to the shim log when MOSS_SHIM_TRACE is set.
func trace(what string) {
	if os.Getenv("MOSS_SHIM_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "%s %v\n", what, time.Since(traceStart))
	}
}

func (s *shim) create() error {
	trace("main")
	data, err := os.ReadFile(filepath.Join(s.opts.Bundle, SpecFile))
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	if err := os.Chdir(s.opts.Bundle); err != nil {
		return err
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:      s.opts.ID,
		Spec:            &spec,
		RootlessEUID:    os.Geteuid() != 0,
		RootlessCgroups: os.Geteuid() != 0 || userns.RunningInUserNS(),
	})
	if err != nil {
		return fmt.Errorf("container config: %w", err)
	}
	// specconv leaves the process limits to its caller (runc's own CLI
	// converts them); in the container's config they apply to its init and
	// its execs alike, as docker's.
	if cfg.Rlimits, err = rlimits(spec.Process.Rlimits); err != nil {
		return err
	}
	cg, err := cgroup.Read(s.opts.Bundle)
	if err != nil {
		return fmt.Errorf("read cgroups: %w", err)
	}
	if cg != nil {
		s.cgroups = cg.Paths
		// In libcontainer's hooks the init is still root in the user
		// namespace (the user's own ID), which cgroup v1 needs of a
		// process moved by its owner; its cgroups are not libcontainer's
		// (it cannot take a path per v1 controller).
		if cfg.Hooks == nil {
			cfg.Hooks = configs.Hooks{}
		}
		cfg.Hooks[configs.CreateRuntime] = append(cfg.Hooks[configs.CreateRuntime], configs.NewFunctionHook(func(st *specs.State) error {
			trace("cgroups hook")
			err := cgroup.Join(cg.Paths, st.Pid, cg.Resources)
			trace("cgroups joined")
			return err
		}))
	}
	trace("configured")
	c, err := libcontainer.Create(s.opts.RuncRoot, s.opts.ID, cfg)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	s.container = c
	if spec.Process.Terminal {
		return s.startTTY(spec.Process)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	var stdin io.Reader = devnull
	if s.opts.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close() // the container's now
		stdin, s.stdin = r, w
	}
	proc := processOf(spec.Process)
	proc.Init = true
	proc.Stdin, proc.Stdout, proc.Stderr = stdin, outW, errW
	var stubEnds []*os.File
	if s.opts.Warm {
		if s.stub, stubEnds, err = warmProcess(proc); err != nil {
			return err
		}
	}
	trace("created")
	if err := c.Start(proc); err != nil {
		_ = c.Destroy()
		return err
	}
	trace("started")
	outW.Close()
	errW.Close()
	devnull.Close()
	s.process, s.stdout, s.stderr = proc, outR, errR
	if s.opts.Warm {
		for _, f := range stubEnds {
			f.Close()
		}
		// The stub runs now, as PID 1, and waits for the command.
		if err := c.Exec(); err != nil {
			_ = c.Signal(syscall.SIGKILL)
			_ = c.Destroy()
			return fmt.Errorf("start the warm container's stub: %w", err)
		}
		trace("stub")
	}
	return s.listen()
}

// warmProcess makes p the stub of a warm container: this binary, passed as
// descriptor 3 and executed through /proc (so that nothing of the host's
// is mounted into the container), with the control socket as descriptor
// 4. It returns the shim's end of the socket and the descriptors to close
// once the process started.
func warmProcess(p *libcontainer.Process) (*os.File, []*os.File, error) {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, nil, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		exe.Close()
		return nil, nil, err
	}
	ours, theirs := os.NewFile(uintptr(pair[0]), "stub"), os.NewFile(uintptr(pair[1]), "stub-child")
	p.ExtraFiles = []*os.File{exe, theirs}
	p.Args = []string{"/proc/self/fd/3"}
	p.Env = []string{cexec.StubEnv + "=1"}
	return ours, []*os.File{exe, theirs}, nil
}

// stateFile is libcontainer's state of container id under runcRoot.
func stateFile(runcRoot, id string) string { return filepath.Join(runcRoot, id, "state.json") }

// LibcontainerCgroups are the cgroups libcontainer recorded in its state
// of container id (nil when it made none, or has no state).
func LibcontainerCgroups(runcRoot, id string) map[string]string {
	var st struct {
		CgroupPaths map[string]string `json:"cgroup_paths"`
	}
	if b, err := os.ReadFile(stateFile(runcRoot, id)); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st.CgroupPaths
}

// rlimits converts the spec's process limits to libcontainer's.
func rlimits(list []specs.POSIXRlimit) ([]configs.Rlimit, error) {
	var out []configs.Rlimit
	for _, r := range list {
		t, ok := spec.RlimitTypes[r.Type]
		if !ok {
			return nil, fmt.Errorf("unknown process limit %s", r.Type)
		}
		out = append(out, configs.Rlimit{Type: t, Hard: r.Hard, Soft: r.Soft})
	}
	return out, nil
}

// processOf is libcontainer's process for a spec's process: the
// container's init (with Init set) or an exec's.
func processOf(p *specs.Process) *libcontainer.Process {
	nnp := p.NoNewPrivileges
	proc := &libcontainer.Process{
		Args: p.Args, Env: p.Env, UID: int(p.User.UID), GID: int(p.User.GID), Cwd: p.Cwd,
		NoNewPrivileges: &nnp,
	}
	for _, g := range p.User.AdditionalGids {
		proc.AdditionalGroups = append(proc.AdditionalGroups, int(g))
	}
	if p.Capabilities != nil {
		proc.Capabilities = &configs.Capabilities{Bounding: p.Capabilities.Bounding, Effective: p.Capabilities.Effective, Permitted: p.Capabilities.Permitted}
	}
	return proc
}

// startTTY starts the init on a new pseudo-terminal: libcontainer's init
// allocates it inside the container and sends the master back over a
// socket pair. The master carries the container's output and input.
func (s *shim) startTTY(p *specs.Process) error {
	proc := processOf(p)
	proc.Init = true
	console, err := consoleSocket(proc, &specs.Box{Height: uint(s.opts.ConsoleHeight), Width: uint(s.opts.ConsoleWidth)})
	if err != nil {
		return err
	}
	trace("created")
	if err := s.container.Start(proc); err != nil {
		proc.ConsoleSocket.Close()
		console.Close()
		_ = s.container.Destroy()
		return err
	}
	trace("started")
	master, err := receiveConsole(proc, console)
	if err != nil {
		_ = s.container.Signal(syscall.SIGKILL)
		_ = s.container.Destroy()
		return fmt.Errorf("receive the container's terminal: %w", err)
	}
	in, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	s.process, s.stdout, s.stdin, s.tty = proc, master, os.NewFile(uintptr(in), "tty-in"), true
	return s.listen()
}

// consoleSocket asks libcontainer's init of p for a terminal of the given
// size (none: its default), sent back over a socket pair whose end it
// returns; receiveConsole takes the terminal's master once p started.
func consoleSocket(p *libcontainer.Process, size *specs.Box) (*os.File, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	p.ConsoleSocket = os.NewFile(uintptr(pair[1]), "console-child")
	if size != nil {
		p.ConsoleHeight, p.ConsoleWidth = uint16(size.Height), uint16(size.Width)
	}
	return os.NewFile(uintptr(pair[0]), "console"), nil
}

// receiveConsole returns the master of p's terminal from console, and
// closes both ends of the socket pair.
func receiveConsole(p *libcontainer.Process, console *os.File) (*os.File, error) {
	p.ConsoleSocket.Close()
	defer console.Close()
	return recvFd(console)
}

// recvFd receives one descriptor sent with SCM_RIGHTS.
func recvFd(sock *os.File) (*os.File, error) {
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no descriptor received (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("no descriptor received (%v)", err)
	}
	return os.NewFile(uintptr(fds[0]), "tty"), nil
}

// listen opens the shim's socket for the agent's requests.
func (s *shim) listen() error {
	c := s.container
	_ = os.Remove(s.opts.Socket)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.opts.Socket, Net: "unix"})
	if err != nil {
		_ = c.Signal(syscall.SIGKILL)
		_ = c.Destroy()
		return err
	}
	l.SetUnlinkOnClose(false)
	s.listener = l
	return nil
}

// serveUntilStart answers requests until the start request has run the
// container's command. Output stays in the pipes for the supervisor.
func (s *shim) serveUntilStart() error {
	for {
		c, err := s.listener.AcceptUnix()
		if err != nil {
			return err
		}
		var req request
		if err := json.NewDecoder(io.LimitReader(c, 4<<20)).Decode(&req); err != nil {
			c.Close()
			continue
		}
		switch req.Op {
		case "start":
			if err := s.container.Exec(); err != nil {
				writeResponse(c, response{Error: err.Error()})
				c.Close()
				return err
			}
			pid, _ := s.process.Pid()
			writeResponse(c, response{Pid: pid})
			c.Close()
			return nil
		case "attach":
			writeResponse(c, response{})
			s.attached = append(s.attached, handedConn{c: c, stdin: req.Stdin, stdout: req.Stdout, stderr: req.Stderr})
		case "wait":
			s.waiting = append(s.waiting, c)
		case "resize":
			r := response{}
			if err := resize(s.stdout, s.tty, req.Height, req.Width); err != nil {
				r.Error = err.Error()
			}
			writeResponse(c, r)
			c.Close()
		case "kill":
			// Before the start the process is libcontainer's init, waiting
			// at its exec fifo: a signal is the agent giving up on the
			// start (its network could not be set up, say). The caller
			// cleans up and records the exit.
			r := response{}
			if err := s.container.Signal(syscall.Signal(req.Signal)); err != nil && !errors.Is(err, os.ErrProcessDone) {
				r.Error = err.Error()
			}
			writeResponse(c, r)
			c.Close()
			if r.Error == "" {
				return fmt.Errorf("killed with signal %d before its start", req.Signal)
			}
		default:
			writeResponse(c, response{Error: "unknown op " + req.Op})
			c.Close()
		}
	}
}

// handOff re-executes the binary as the C supervisor with the pipes, the
// listener, the log and the connections so far. It returns only on failure.
func (s *shim) handOff() error {
	logf, err := os.OpenFile(filepath.Join(s.opts.Bundle, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	lf, err := s.listener.File()
	if err != nil {
		return err
	}
	// Duplicates without close-on-exec, above anything the Go runtime
	// uses; the supervisor learns their numbers from the environment.
	// (Placing them at fixed numbers with dup2 would clobber the runtime's
	// own descriptors, such as its epoll instance, before the exec.)
	keep := func(fd uintptr) (int, error) { return unix.FcntlInt(fd, unix.F_DUPFD, 100) }
	var fixed []string
	for _, f := range []*os.File{s.stdout, s.stderr, lf, logf, s.stdin, s.stub} {
		if f == nil {
			fixed = append(fixed, "-1")
			continue
		}
		fd, err := keep(f.Fd())
		if err != nil {
			return err
		}
		fixed = append(fixed, strconv.Itoa(fd))
	}
	pass := func(c *net.UnixConn) (int, error) {
		f, err := c.File()
		if err != nil {
			return -1, err
		}
		return keep(f.Fd())
	}
	b2i := map[bool]int{false: 0, true: 1}
	var attach, wait []string
	for _, a := range s.attached {
		fd, err := pass(a.c)
		if err != nil {
			return err
		}
		attach = append(attach, fmt.Sprintf("%d:%d:%d:%d", fd, b2i[a.stdout], b2i[a.stderr], b2i[a.stdin]))
	}
	for _, w := range s.waiting {
		fd, err := pass(w)
		if err != nil {
			return err
		}
		wait = append(wait, strconv.Itoa(fd))
	}
	pid, _ := s.process.Pid()
	var cgroups []string
	// From libcontainer's state file, as it wrote it at the start:
	// Container.State would also look the process up in /proc, which costs
	// about 2 ms of every start.
	for _, p := range LibcontainerCgroups(s.opts.RuncRoot, s.opts.ID) {
		cgroups = append(cgroups, p)
	}
	for _, p := range s.cgroups {
		cgroups = append(cgroups, p)
	}
	env := []string{
		envSupervisor + "=1",
		"MOSS_SV_FDS=" + strings.Join(fixed, ","),
		"MOSS_SV_PID=" + strconv.Itoa(pid),
		"MOSS_SV_BUNDLE=" + s.opts.Bundle,
		"MOSS_SV_LOG=" + filepath.Join(s.opts.Bundle, LogFile),
		"MOSS_SV_SOCKET=" + s.opts.Socket,
		"MOSS_SV_STATEDIR=" + filepath.Join(s.opts.RuncRoot, s.opts.ID),
		"MOSS_SV_CGROUPS=" + strings.Join(cgroups, "\n"),
		"MOSS_SV_MAXSIZE=" + strconv.FormatInt(s.opts.LogMaxSize, 10),
		"MOSS_SV_MAXFILES=" + strconv.Itoa(max(s.opts.LogMaxFiles, 1)),
		"MOSS_SV_ATTACH=" + strings.Join(attach, ","),
		"MOSS_SV_WAIT=" + strings.Join(wait, ","),
		"MOSS_SV_STDINONCE=" + strconv.Itoa(b2i[s.opts.StdinOnce]),
		"MOSS_SV_TTY=" + strconv.Itoa(b2i[s.tty]),
	}
	if s.stub != nil {
		env = append(env, "MOSS_SV_STUB="+fixed[5])
	}
	argv := []string{"moss", Role, s.opts.ID, s.opts.Bundle, s.opts.RuncRoot, s.opts.Socket,
		strconv.FormatInt(s.opts.LogMaxSize, 10), strconv.Itoa(s.opts.LogMaxFiles)}
	return syscall.Exec("/proc/self/exe", argv, env)
}
