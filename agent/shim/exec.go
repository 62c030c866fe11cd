package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/agent/cgroup"
	"github.com/moss-containers/moss/internal/cexec"
	"github.com/moss-containers/moss/internal/spare"
)

// execArg, after Role, runs an exec helper: one process started in a
// running container's namespaces by libcontainer (a setns process), with
// the helper's standard streams as its own.
const execArg = "exec"

// execRequest is what the agent sends an exec helper first: the process,
// and the container's cgroups for it to be born in (none when the
// container has none of its own).
type execRequest struct {
	specs.Process
	Cgroups map[string]string `json:"mossCgroups,omitempty"`
}

// winsize is a resize message, sent on the spec's descriptor after it.
type winsize struct {
	Height int `json:"height"`
	Width  int `json:"width"`
}

// execMain runs the exec helper. args: RUNCROOT ID. Descriptor 3 carries
// the process (an OCI spec's; with Terminal it runs on a new terminal of
// ConsoleSize, and the helper copies between it and its own stdin and
// stdout), then resize messages for a TTY; on descriptor 4 the helper
// writes one response with the process's PID (or the error), then one with
// its exit status.
func execMain(args []string) int {
	var pre *preloaded
	if len(args) >= 1 && args[0] == warmArg {
		if len(args) == 3 {
			pre = preload(args[1], args[2])
		}
		if args = awaitExec(); args == nil {
			return 0
		}
	}
	status := os.NewFile(4, "status")
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: __shim exec RUNCROOT ID")
		return 2
	}
	fail := func(err error) int {
		writeResponse(status, response{Error: err.Error()})
		return 1
	}
	var req execRequest
	ctl := json.NewDecoder(os.NewFile(3, "spec"))
	if err := ctl.Decode(&req); err != nil {
		return fail(fmt.Errorf("bad exec spec: %w", err))
	}
	sp := &req.Process
	var err error
	c := pre.container(args[0], args[1])
	if c == nil {
		if c, err = libcontainer.Load(args[0], args[1]); err != nil {
			return fail(fmt.Errorf("load container: %w", err))
		}
	}
	p := processOf(sp)
	var console *os.File
	if sp.Terminal {
		if console, err = consoleSocket(p, sp.ConsoleSize); err != nil {
			return fail(err)
		}
	} else {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	if len(req.Cgroups) > 0 {
		back, err := cgroup.EnterSelf(req.Cgroups)
		if err != nil {
			return fail(err)
		}
		err = c.Run(p)
		back()
		if err != nil {
			return fail(err)
		}
	} else if err := c.Run(p); err != nil {
		return fail(err)
	}
	var copied chan struct{}
	if sp.Terminal {
		master, err := receiveConsole(p, console)
		if err != nil {
			_ = p.Signal(syscall.SIGKILL)
			return fail(fmt.Errorf("receive the terminal: %w", err))
		}
		go func() { _, _ = io.Copy(master, os.Stdin) }()
		copied = make(chan struct{})
		go func() {
			_, _ = io.Copy(os.Stdout, master) // EIO once the terminal's last user is gone
			close(copied)
		}()
		go func() {
			for {
				var ws winsize
				if ctl.Decode(&ws) != nil {
					return
				}
				_ = resize(master, true, ws.Height, ws.Width)
			}
		}()
	}
	pid, _ := p.Pid()
	writeResponse(status, response{Pid: pid})
	var st ExitStatus
	if ps, err := p.Wait(); ps == nil {
		st.Code, st.Error = 255, fmt.Sprint(err)
	} else {
		ws, _ := ps.Sys().(syscall.WaitStatus)
		st = exitStatus(ws)
	}
	if copied != nil {
		select {
		case <-copied:
		case <-time.After(time.Second): // children in the background hold the terminal
		}
	}
	st.FinishedAt = time.Now().UTC()
	writeResponse(status, response{Exit: &st})
	return 0
}

// exitStatus is an exec's status from its wait status.
func exitStatus(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Signal: int(ws.Signal()), Code: 128 + int(ws.Signal())}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// Exec is an exec helper's process, started by StartExec.
type Exec struct {
	// fast is set for the fast exec's process, a child of the caller.
	fast   bool
	cmd    *exec.Cmd
	status *bufio.Reader
	closer io.Closer
	ctl    *os.File // resize messages, for a TTY
	after  func()   // called once the exec has ended
	mu     sync.Mutex
	Pid    int
}

// A warm exec helper (`__shim exec --warm`) is started in advance, with
// one end of a socket pair as descriptor 3. The agent sends it "RUNCROOT
// ID\n" with, as SCM_RIGHTS, its stdin, stdout and stderr, the spec pipe and
// the status pipe; the helper puts them where a cold helper has them
// (0, 1, 2, 3, 4) and goes on as one. It saves a start of the binary (its
// Go runtime and package initialisers) on the path of each exec.

// awaitExec waits for the work of a warm helper; nil when the agent closed
// the socket instead.
func awaitExec() []string {
	sock := 3
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(5*4))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 5 {
		return nil
	}
	unix.Close(sock)
	for i, fd := range fds {
		if fd == i {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return nil
			}
			continue
		}
		// Dup3 without O_CLOEXEC: the standard streams are passed on.
		if err := unix.Dup3(fd, i, 0); err != nil {
			return nil
		}
		unix.Close(fd)
	}
	for _, f := range []int{3, 4} {
		unix.CloseOnExec(f)
	}
	return strings.Fields(string(buf[:n]))
}

// preloaded is the container a warm helper loaded while it waited: the
// one of the last exec, likely the next one's too (libcontainer's Load
// took 3 ms of an exec: its state's JSON and the cgroup and /proc look-ups).
type preloaded struct {
	root, id string
	c        *libcontainer.Container
	state    os.FileInfo
}

func preload(root, id string) *preloaded {
	st, err := os.Stat(stateFile(root, id))
	if err != nil {
		return nil
	}
	c, err := libcontainer.Load(root, id)
	if err != nil {
		return nil
	}
	return &preloaded{root: root, id: id, c: c, state: st}
}

// container is the preloaded container when it is the one asked for and
// its state file has not changed since (a restart rewrites it); nil else.
func (p *preloaded) container(root, id string) *libcontainer.Container {
	if p == nil || p.root != root || p.id != id {
		return nil
	}
	if now, err := os.Stat(stateFile(root, id)); err != nil || !sameState(now, p.state) {
		return nil
	}
	return p.c
}

// sameState says a container's state file, now, is still the one it was:
// a restart of the container rewrites it.
func sameState(now, was os.FileInfo) bool {
	return os.SameFile(now, was) && now.ModTime().Equal(was.ModTime()) && now.Size() == was.Size()
}

// ExecLauncher keeps one warm exec helper ready.
type ExecLauncher struct {
	exe  string
	warm *spare.Spare[*warmExec]
	// fast has what the fast exec needs of each container it ran in.
	fast map[string]*fastEntry
	// Libcontainer turns the fast exec off: every exec is libcontainer's.
	Libcontainer bool
	// last is the runc root and ID of the last exec, which the next warm
	// helper preloads.
	mu   sync.Mutex
	last [2]string
}

type warmExec struct {
	cmd  *exec.Cmd
	sock *os.File
}

// NewExecLauncher returns a launcher of exec helpers from the binary exe.
func NewExecLauncher(exe string) *ExecLauncher {
	l := &ExecLauncher{exe: exe}
	l.warm = spare.New(l.prepare, (*warmExec).close)
	return l
}

// Refill starts the next warm helper in the background if there is none.
func (l *ExecLauncher) Refill() { l.warm.Refill() }

// close ends a warm helper: it exits when its socket closes.
func (w *warmExec) close() {
	w.sock.Close()
	_ = w.cmd.Wait()
}

func (l *ExecLauncher) prepare() (*warmExec, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "exec-ctl"), os.NewFile(uintptr(fds[1]), "exec-ctl")
	defer theirs.Close()
	cmd := exec.Command(l.exe, Role, execArg, warmArg)
	l.mu.Lock()
	if l.last[0] != "" {
		cmd.Args = append(cmd.Args, l.last[0], l.last[1])
	}
	l.mu.Unlock()
	cmd.Args[0] = "moss"
	cmd.Env = shimEnv()
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, err
	}
	return &warmExec{cmd: cmd, sock: ours}, nil
}

// Close ends the warm helper.
func (l *ExecLauncher) Close() { l.warm.Close() }

// Start is StartExec with the warm helper when there is one (then the next
// is started in the background), else with a new one.
func (l *ExecLauncher) Start(runcRoot, id string, sp *specs.Process, cgroups map[string]string, stdin, stdout, stderr *os.File) (*Exec, error) {
	if e, ok, err := l.startFast(runcRoot, id, sp, cgroups, stdin, stdout, stderr); ok {
		return e, err
	}
	req := &execRequest{Process: *sp, Cgroups: cgroups}
	l.mu.Lock()
	l.last = [2]string{runcRoot, id}
	l.mu.Unlock()
	w, ok := l.warm.Take()
	var e *Exec
	var err error
	if !ok {
		e, err = startExec(l.exe, runcRoot, id, req, stdin, stdout, stderr)
	} else {
		e, err = startWarm(w, runcRoot, id, req, stdin, stdout, stderr)
	}
	if err != nil {
		l.Refill()
		return nil, err
	}
	// The next helper starts once this exec has ended: on two cores its
	// start would compete with the command's.
	e.after = l.Refill
	return e, nil
}

func startWarm(w *warmExec, runcRoot, id string, req *execRequest, stdin, stdout, stderr *os.File) (*Exec, error) {
	defer w.sock.Close()
	fail := func(err error) (*Exec, error) {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
		return nil, err
	}
	// nil streams are /dev/null, as exec.Cmd has them for a cold helper.
	std, done, err := cexec.Streams([3]*os.File{stdin, stdout, stderr})
	if err != nil {
		return fail(err)
	}
	defer done()
	specR, specW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer specR.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specW.Close()
		return fail(err)
	}
	rights := unix.UnixRights(int(std[0].Fd()), int(std[1].Fd()), int(std[2].Fd()), int(specR.Fd()), int(statusW.Fd()))
	err = unix.Sendmsg(int(w.sock.Fd()), []byte(runcRoot+" "+id+"\n"), rights, nil, 0)
	statusW.Close()
	if err != nil {
		specW.Close()
		statusR.Close()
		return fail(fmt.Errorf("hand the exec to its helper: %w", err))
	}
	return started(w.cmd, req, specW, statusR)
}

// startExec starts req in container id with a new exec helper from the
// binary exe, with stdin, stdout and stderr as the process's streams (nil
// for /dev/null), and returns once the process runs. The helper has its
// own session: signals to the agent's process group do not reach it.
func startExec(exe, runcRoot, id string, req *execRequest, stdin, stdout, stderr *os.File) (*Exec, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer specR.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specW.Close()
		return nil, err
	}
	cmd := exec.Command(exe, Role, execArg, runcRoot, id)
	cmd.Args[0] = "moss"
	cmd.Env = shimEnv()
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{specR, statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// nil streams are /dev/null for exec.Cmd.
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	err = cmd.Start()
	statusW.Close()
	if err != nil {
		specW.Close()
		statusR.Close()
		return nil, err
	}
	return started(cmd, req, specW, statusR)
}

// started sends the process to a helper that has its streams and waits
// until the process runs.
func started(cmd *exec.Cmd, req *execRequest, specW, statusR *os.File) (*Exec, error) {
	_ = json.NewEncoder(specW).Encode(req)
	e := &Exec{cmd: cmd, status: bufio.NewReader(statusR), closer: statusR}
	if req.Terminal {
		e.ctl = specW
	} else {
		specW.Close()
	}
	resp, err := e.next()
	if err != nil {
		e.Wait()
		return nil, err
	}
	e.Pid = resp.Pid
	return e, nil
}

func (e *Exec) next() (*response, error) {
	line, err := e.status.ReadBytes('\n')
	if err != nil {
		return nil, errors.New("exec helper ended without an answer")
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	return &resp, nil
}

// Resize sets the size of the process's terminal.
func (e *Exec) Resize(height, width int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctl == nil {
		return errors.New("the exec has no TTY")
	}
	return json.NewEncoder(e.ctl).Encode(winsize{Height: height, Width: width})
}

// Wait waits for the process to exit and returns its status.
func (e *Exec) Wait() *ExitStatus {
	if e.fast {
		return waitFast(e.Pid)
	}
	defer func() {
		e.closer.Close()
		e.mu.Lock()
		if e.ctl != nil {
			e.ctl.Close()
			e.ctl = nil
		}
		e.mu.Unlock()
		_ = e.cmd.Wait()
		if e.after != nil {
			e.after()
		}
	}()
	resp, err := e.next()
	if err != nil || resp.Exit == nil {
		return &ExitStatus{Code: 255, Error: fmt.Sprint(err), FinishedAt: time.Now().UTC()}
	}
	return resp.Exit
}
