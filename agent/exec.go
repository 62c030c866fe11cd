package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/agent/spec"
)

// execInstance is one `docker exec`: created, then started once; it is
// forgotten with its container.
type execInstance struct {
	ID  string
	c   *Container
	req container.ExecCreateRequest

	mu       sync.Mutex
	started  bool
	running  bool
	pid      int
	exitCode *int
}

// execGrace is how long an exec's output may still drain after the process
// exited; children it left in the background may hold the pipes open.
const execGrace = time.Second

func (a *Agent) postExecCreate(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req container.ExecCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return kindErr(errInvalid, "No exec command specified")
	}
	if req.Tty {
		return kindErr(errInvalid, "exec with a TTY (-t) is not supported yet: run without -t")
	}
	if err := validateEnv(req.Env); err != nil {
		return err
	}
	if err := checkRunning(c); err != nil {
		return err
	}
	e := &execInstance{ID: newID(), c: c, req: req}
	a.mu.Lock()
	if a.execs == nil {
		a.execs = map[string]*execInstance{}
	}
	a.execs[e.ID] = e
	a.mu.Unlock()
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: e.ID})
	return nil
}

func checkRunning(c *Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != "running" {
		return kindErr(errConflict, "container %s is not running", c.ID)
	}
	return nil
}

func (a *Agent) execByID(id string) (*execInstance, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.execs[id]; ok {
		return e, nil
	}
	return nil, kindErr(errNotFound, "No such exec instance: %s", id)
}

// forgetExecs drops the exec instances of a removed container.
func (a *Agent) forgetExecs(c *Container) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, e := range a.execs {
		if e.c == c {
			delete(a.execs, id)
		}
	}
}

func (a *Agent) getExecJSON(w http.ResponseWriter, r *http.Request) error {
	e, err := a.execByID(r.PathValue("id"))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	priv := e.req.Privileged
	resp := container.ExecInspectResponse{
		ID: e.ID, Running: e.running, ExitCode: e.exitCode, ContainerID: e.c.ID, Pid: e.pid,
		OpenStdin: e.req.AttachStdin, OpenStdout: e.req.AttachStdout, OpenStderr: e.req.AttachStderr,
		CanRemove: e.started && !e.running, DetachKeys: []byte(e.req.DetachKeys),
		ProcessConfig: &container.ExecProcessConfig{
			Tty: e.req.Tty, Entrypoint: e.req.Cmd[0], Arguments: e.req.Cmd[1:], Privileged: &priv, User: e.req.User,
		},
	}
	if resp.ProcessConfig.Arguments == nil {
		resp.ProcessConfig.Arguments = []string{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (a *Agent) postExecResize(w http.ResponseWriter, r *http.Request) error {
	e, err := a.execByID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if !e.req.Tty {
		return kindErr(errConflict, "exec %s has no TTY to resize", e.ID)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// execProcess resolves what e runs in its container, now.
func (a *Agent) execProcess(e *execInstance) (shim.ExecSpec, error) {
	c := e.c
	c.mu.Lock()
	rootfs, cfg, host := c.Rootfs, c.Config, c.HostConfig
	running := c.State.Status == "running"
	c.mu.Unlock()
	if !running {
		return shim.ExecSpec{}, kindErr(errConflict, "container %s is not running", c.ID)
	}
	p, err := spec.Exec(rootfs, cfg, host, spec.ExecRequest{
		Args: e.req.Cmd, Env: e.req.Env, User: e.req.User, WorkingDir: e.req.WorkingDir, Privileged: e.req.Privileged,
	})
	if err != nil {
		if errors.Is(err, spec.ErrInvalid) {
			return shim.ExecSpec{}, kindErr(errInvalid, "%s", err.Error())
		}
		return shim.ExecSpec{}, err
	}
	sp := shim.ExecSpec{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, UID: int(p.User.UID), GID: int(p.User.GID),
		Caps: p.Capabilities.Bounding, NoNewPrivileges: p.NoNewPrivileges,
	}
	for _, g := range p.User.AdditionalGids {
		sp.AdditionalGids = append(sp.AdditionalGids, int(g))
	}
	return sp, nil
}

// begin marks e started; an exec starts once.
func (e *execInstance) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return kindErr(errConflict, "Exec command %s is already running", e.ID)
	}
	e.started, e.running = true, true
	return nil
}

func (e *execInstance) finish(code int) {
	e.mu.Lock()
	e.running, e.exitCode = false, &code
	e.mu.Unlock()
}

// startFailure is the exit code docker gives an exec that could not start.
func startFailure(err error) int {
	if errors.Is(runError(err), errNoCommand) {
		return 127
	}
	return 126
}

func (a *Agent) postExecStart(w http.ResponseWriter, r *http.Request) error {
	e, err := a.execByID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req container.ExecStartRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil && !strings.Contains(err.Error(), "empty") {
			return err
		}
	}
	if req.Tty {
		return kindErr(errInvalid, "exec with a TTY (-t) is not supported yet: run without -t")
	}
	sp, err := a.execProcess(e)
	if err != nil {
		return err
	}
	if err := e.begin(); err != nil {
		return err
	}
	if req.Detach {
		x, err := shim.StartExec(a.shimExe, a.dirs.RuncRoot(), e.c.ID, sp, nil, nil, nil)
		if err != nil {
			e.finish(startFailure(err))
			return fmt.Errorf("OCI runtime exec failed: %w", runError(err))
		}
		e.mu.Lock()
		e.pid = x.Pid
		e.mu.Unlock()
		go func() { e.finish(x.Wait().Code) }()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return fmt.Errorf("connection cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		fmt.Fprint(buf, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	} else {
		fmt.Fprint(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n")
	}
	if err := buf.Flush(); err != nil {
		e.finish(255)
		return nil
	}
	out := &frameWriter{w: conn}
	code := a.runAttachedExec(e, sp, buf.Reader, out)
	e.finish(code)
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return nil
}

// runAttachedExec runs e with its output framed onto out and, when it
// asked for stdin, the client's stream as its input; it returns the exit
// code once the process exited and its output drained.
func (a *Agent) runAttachedExec(e *execInstance, sp shim.ExecSpec, in *bufio.Reader, out *frameWriter) int {
	var files []*os.File // the agent's ends, closed on return
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	var stdinR, stdinW, outR, outW, errR, errW *os.File
	var err error
	if e.req.AttachStdin {
		if stdinR, stdinW, err = pipe(); err != nil {
			return 126
		}
	}
	if outR, outW, err = pipe(); err != nil {
		return 126
	}
	if errR, errW, err = pipe(); err != nil {
		return 126
	}
	x, err := shim.StartExec(a.shimExe, a.dirs.RuncRoot(), e.c.ID, sp, stdinR, outW, errW)
	// Only the process holds these now.
	for _, f := range []*os.File{stdinR, outW, errW} {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		// As docker: the message on the stream, the exit code from inspect.
		_, _ = out.write(1, []byte("OCI runtime exec failed: "+err.Error()+"\r\n"))
		return startFailure(err)
	}
	e.mu.Lock()
	e.pid = x.Pid
	e.mu.Unlock()
	if stdinW != nil {
		go func() {
			_, _ = io.Copy(stdinW, in)
			stdinW.Close()
		}()
	}
	var drained sync.WaitGroup
	for id, r := range map[byte]*os.File{1: outR, 2: errR} {
		wanted := id == 1 && e.req.AttachStdout || id == 2 && e.req.AttachStderr
		drained.Add(1)
		go func() {
			defer drained.Done()
			copyFrames(out, id, r, wanted)
		}()
	}
	st := x.Wait()
	done := make(chan struct{})
	go func() { drained.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(execGrace):
		outR.Close()
		errR.Close()
		<-done
	}
	return st.Code
}

// frameWriter writes Docker's multiplexed frames from several goroutines.
type frameWriter struct {
	mu sync.Mutex
	w  net.Conn
}

func (f *frameWriter) write(stream byte, p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hdr := frameHeader(stream, len(p))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	return f.w.Write(p)
}

// copyFrames copies r to out as frames of stream; unwanted output is read
// and dropped, so that the process does not block on a full pipe.
func copyFrames(out *frameWriter, stream byte, r io.Reader, wanted bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 && wanted {
			if _, werr := out.write(stream, buf[:n]); werr != nil {
				wanted = false // the client left: keep draining
			}
		}
		if err != nil {
			return
		}
	}
}
