package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execArg, after Role, runs an exec helper: one process started in a
// running container's namespaces by libcontainer (a setns process), with
// the helper's standard streams as its own.
const execArg = "exec"

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
	status := os.NewFile(4, "status")
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: __shim exec RUNCROOT ID")
		return 2
	}
	fail := func(err error) int {
		writeResponse(status, response{Error: err.Error()})
		return 1
	}
	var sp specs.Process
	ctl := json.NewDecoder(os.NewFile(3, "spec"))
	if err := ctl.Decode(&sp); err != nil {
		return fail(fmt.Errorf("bad exec spec: %w", err))
	}
	c, err := libcontainer.Load(args[0], args[1])
	if err != nil {
		return fail(fmt.Errorf("load container: %w", err))
	}
	p := processOf(&sp)
	var console *os.File
	if sp.Terminal {
		if console, err = consoleSocket(p, sp.ConsoleSize); err != nil {
			return fail(err)
		}
	} else {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	if err := c.Run(p); err != nil {
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
	st := ExitStatus{}
	ps, err := p.Wait()
	if ps == nil {
		st.Code, st.Error = 255, fmt.Sprint(err)
	} else if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Signal, st.Code = int(ws.Signal()), 128+int(ws.Signal())
	} else {
		st.Code = ps.ExitCode()
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

// Exec is an exec helper's process, started by StartExec.
type Exec struct {
	cmd    *exec.Cmd
	status *bufio.Reader
	closer io.Closer
	ctl    *os.File // resize messages, for a TTY
	mu     sync.Mutex
	Pid    int
}

// StartExec starts sp in container id with an exec helper from the binary
// exe, with stdin, stdout and stderr as the process's streams (nil for
// /dev/null), and returns once the process runs. The helper has its own
// session: signals to the agent's process group do not reach it.
func StartExec(exe, runcRoot, id string, sp *specs.Process, stdin, stdout, stderr *os.File) (*Exec, error) {
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
	_ = json.NewEncoder(specW).Encode(sp)
	e := &Exec{cmd: cmd, status: bufio.NewReader(statusR), closer: statusR}
	if sp.Terminal {
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
	defer func() {
		e.closer.Close()
		e.mu.Lock()
		if e.ctl != nil {
			e.ctl.Close()
			e.ctl = nil
		}
		e.mu.Unlock()
		_ = e.cmd.Wait()
	}()
	resp, err := e.next()
	if err != nil || resp.Exit == nil {
		return &ExitStatus{Code: 255, Error: fmt.Sprint(err), FinishedAt: time.Now().UTC()}
	}
	return resp.Exit
}
