package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
)

// execArg, after Role, runs an exec helper: one process started in a
// running container's namespaces by libcontainer (a setns process), with
// the helper's standard streams as its own.
const execArg = "exec"

// ExecSpec is the process an exec helper starts.
type ExecSpec struct {
	Args            []string `json:"args"`
	Env             []string `json:"env"`
	Cwd             string   `json:"cwd"`
	UID             int      `json:"uid"`
	GID             int      `json:"gid"`
	AdditionalGids  []int    `json:"additional_gids,omitempty"`
	Caps            []string `json:"caps"`
	NoNewPrivileges bool     `json:"no_new_privileges,omitempty"`
}

// execMain runs the exec helper. args: RUNCROOT ID. Descriptor 3 carries
// the ExecSpec; on descriptor 4 the helper writes one response with the
// process's PID (or the error), then one with its exit status.
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
	var sp ExecSpec
	if err := json.NewDecoder(os.NewFile(3, "spec")).Decode(&sp); err != nil {
		return fail(fmt.Errorf("bad exec spec: %w", err))
	}
	c, err := libcontainer.Load(args[0], args[1])
	if err != nil {
		return fail(fmt.Errorf("load container: %w", err))
	}
	nnp := sp.NoNewPrivileges
	p := &libcontainer.Process{
		Args: sp.Args, Env: sp.Env, Cwd: sp.Cwd, UID: sp.UID, GID: sp.GID, AdditionalGroups: sp.AdditionalGids,
		Capabilities:    &configs.Capabilities{Bounding: sp.Caps, Effective: sp.Caps, Permitted: sp.Caps},
		NoNewPrivileges: &nnp,
		Stdin:           os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
	if err := c.Run(p); err != nil {
		return fail(err)
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
	st.FinishedAt = time.Now().UTC()
	writeResponse(status, response{Exit: &st})
	return 0
}

// Exec is an exec helper's process, started by StartExec.
type Exec struct {
	cmd    *exec.Cmd
	status *bufio.Reader
	closer io.Closer
	Pid    int
}

// StartExec starts sp in container id with an exec helper from the binary
// exe, with stdin, stdout and stderr as the process's streams (nil for
// /dev/null), and returns once the process runs. The helper has its own
// session: signals to the agent's process group do not reach it.
func StartExec(exe, runcRoot, id string, sp ExecSpec, stdin, stdout, stderr *os.File) (*Exec, error) {
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
	specW.Close()
	e := &Exec{cmd: cmd, status: bufio.NewReader(statusR), closer: statusR}
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

// Wait waits for the process to exit and returns its status.
func (e *Exec) Wait() *ExitStatus {
	defer func() {
		e.closer.Close()
		_ = e.cmd.Wait()
	}()
	resp, err := e.next()
	if err != nil || resp.Exit == nil {
		return &ExitStatus{Code: 255, Error: fmt.Sprint(err), FinishedAt: time.Now().UTC()}
	}
	return resp.Exit
}
