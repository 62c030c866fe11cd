package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/agent/spec"
	"github.com/moss-containers/moss/internal/escape"
)

// execInstance is one `docker exec`: created, then started once; it is
// forgotten with its container.
type execInstance struct {
	ID  string
	c   *Container
	req container.ExecCreateRequest

	done chan struct{} // closed by finish

	mu       sync.Mutex
	started  bool
	running  bool
	pid      int
	exitCode *int
	ended    time.Time
	proc     *shim.Exec // while it runs
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
	if _, err := escape.Parse(req.DetachKeys); err != nil {
		return kindErr(errInvalid, "%s", err.Error())
	}
	if err := validateEnv(req.Env); err != nil {
		return err
	}
	if err := checkRunning(c); err != nil {
		return err
	}
	e := &execInstance{ID: newID(), c: c, req: req, done: make(chan struct{})}
	a.mu.Lock()
	if a.execs == nil {
		a.execs = map[string]*execInstance{}
	}
	a.pruneExecs(c)
	a.execs[e.ID] = e
	a.mu.Unlock()
	a.containerEvent(c, events.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.ID})
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: e.ID})
	return nil
}

func checkRunning(c *Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return execableLocked(c)
}

// execableLocked says why exec cannot run in c now, as docker: it must be
// running and not paused. Callers hold c.mu.
func execableLocked(c *Container) error {
	if c.State.Status != "running" {
		return kindErr(errConflict, "container %s is not running", c.ID)
	}
	if c.State.Paused {
		return kindErr(errConflict, "Container %s is paused, unpause the container before exec", c.ID)
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

// execsKept is how many ended exec instances a container keeps for
// inspection; beyond that the oldest go (docker keeps them all until the
// container goes, which grows without bound for a container exec'd into
// periodically).
const execsKept = 64

// pruneExecs drops ended exec instances of c beyond execsKept, the oldest
// first. Callers hold a.mu.
func (a *Agent) pruneExecs(c *Container) {
	var ended []*execInstance
	for _, e := range a.execs {
		if e.c != c {
			continue
		}
		select {
		case <-e.done:
			ended = append(ended, e)
		default:
		}
	}
	if len(ended) <= execsKept {
		return
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].ended.Before(ended[j].ended) })
	for _, e := range ended[:len(ended)-execsKept] {
		delete(a.execs, e.ID)
	}
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
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	if !e.req.Tty {
		return kindErr(errConflict, "exec %s has no TTY to resize", e.ID)
	}
	e.mu.Lock()
	proc := e.proc
	e.mu.Unlock()
	if proc == nil {
		return kindErr(errConflict, "exec %s is not running", e.ID)
	}
	if err := proc.Resize(h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// execProcess resolves what e runs in its container, now.
func (a *Agent) execProcess(e *execInstance) (*specs.Process, error) {
	c := e.c
	c.mu.Lock()
	rootfs, cfg, host := c.Rootfs, c.Config, c.HostConfig
	err := execableLocked(c)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p, err := spec.Exec(rootfs, cfg, host, spec.ExecRequest{
		Args: e.req.Cmd, Env: e.req.Env, User: e.req.User, WorkingDir: e.req.WorkingDir, Privileged: e.req.Privileged,
	})
	if err != nil {
		if errors.Is(err, spec.ErrInvalid) {
			return nil, kindErr(errInvalid, "%s", err.Error())
		}
		return nil, err
	}
	p.Terminal = e.req.Tty
	setConsoleSize(p, e.req.ConsoleSize)
	return p, nil
}

// setConsoleSize sets the initial size of p's terminal from docker's
// [height, width].
func setConsoleSize(p *specs.Process, size *[2]uint) {
	if size != nil && p.Terminal {
		p.ConsoleSize = &specs.Box{Height: size[0], Width: size[1]}
	}
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

// setProc records the started process.
func (e *execInstance) setProc(x *shim.Exec) {
	e.mu.Lock()
	e.pid, e.proc = x.Pid, x
	e.mu.Unlock()
}

func (e *execInstance) finish(code int) {
	e.mu.Lock()
	e.running, e.exitCode, e.proc, e.ended = false, &code, nil, time.Now()
	e.mu.Unlock()
	close(e.done)
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
	sp, err := a.execProcess(e)
	if err != nil {
		return err
	}
	setConsoleSize(sp, req.ConsoleSize)
	if err := e.begin(); err != nil {
		return err
	}
	a.containerEvent(e.c, events.Action("exec_start: "+strings.Join(e.req.Cmd, " ")), map[string]string{"execID": e.ID})
	defer func() { // once it ended (or, detached, whenever it ends)
		go func() {
			<-e.done
			a.containerEvent(e.c, events.ActionExecDie, map[string]string{"execID": e.ID, "exitCode": strconv.Itoa(*e.exitCode)})
		}()
	}()
	if req.Detach {
		x, err := a.execLauncher.Start(a.dirs.RuncRoot(), e.c.ID, sp, a.ownCgroups(e.c.ID), nil, nil, nil)
		if err != nil {
			e.finish(startFailure(err))
			return fmt.Errorf("OCI runtime exec failed: %w", runError(err))
		}
		e.setProc(x)
		go func() { e.finish(x.Wait().Code) }()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, buf, err := hijackStream(w, r, sp.Terminal)
	if err != nil {
		e.finish(255)
		return nil
	}
	defer conn.Close()
	out := &frameWriter{w: conn, raw: sp.Terminal}
	a.runAttachedExec(e, sp, buf.Reader, out)
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return nil
}

// runAttachedExec runs e with its output on out and, when it asked for
// stdin, the client's stream as its input. It returns once the process
// exited, its exit code recorded and its output drained, or, on a TTY,
// when the client typed the detach keys (the process goes on).
func (a *Agent) runAttachedExec(e *execInstance, sp *specs.Process, in *bufio.Reader, out *frameWriter) {
	var files []*os.File // the agent's ends, closed when the process ended
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	started := false
	defer func() {
		if !started {
			closeAll()
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
			e.finish(126)
			return
		}
	}
	if outR, outW, err = pipe(); err != nil {
		e.finish(126)
		return
	}
	if !sp.Terminal { // a terminal has one stream
		if errR, errW, err = pipe(); err != nil {
			e.finish(126)
			return
		}
	}
	x, err := a.execLauncher.Start(a.dirs.RuncRoot(), e.c.ID, sp, a.ownCgroups(e.c.ID), stdinR, outW, errW)
	// Only the process holds these now.
	for _, f := range []*os.File{stdinR, outW, errW} {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		// As docker: the message on the stream, the exit code from inspect.
		_, _ = out.write(1, []byte("OCI runtime exec failed: "+err.Error()+"\r\n"))
		e.finish(startFailure(err))
		return
	}
	e.setProc(x)
	started = true
	detached := make(chan struct{})
	if stdinW != nil {
		keys, _ := escape.Parse(e.req.DetachKeys) // checked at create
		go func() {
			if copyInput(stdinW, in, sp.Terminal, keys) {
				close(detached)
				return
			}
			stdinW.Close()
		}()
	}
	var drained sync.WaitGroup
	streams := map[byte]*os.File{1: outR}
	if errR != nil {
		streams[2] = errR
	}
	for id, r := range streams {
		wanted := id == 1 && e.req.AttachStdout || id == 2 && e.req.AttachStderr
		drained.Add(1)
		go func() {
			defer drained.Done()
			copyFrames(out, id, r, wanted)
		}()
	}
	exited := make(chan struct{})
	go func() {
		st := x.Wait()
		// Output still in the pipes goes out first, for a while: children
		// left in the background may hold them open.
		done := make(chan struct{})
		go func() { drained.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(execGrace):
		}
		e.finish(st.Code)
		closeAll()
		close(exited)
	}()
	select {
	case <-exited:
	case <-detached:
		// The process goes on; its output is read and dropped.
		out.detach()
	}
}

// sizeParams reads the h and w query parameters of a resize.
func sizeParams(r *http.Request) (h, w int, err error) {
	h, errH := strconv.Atoi(r.URL.Query().Get("h"))
	w, errW := strconv.Atoi(r.URL.Query().Get("w"))
	if errH != nil || errW != nil || h < 0 || w < 0 || h > 65535 || w > 65535 {
		return 0, 0, kindErr(errInvalid, "resize: h and w must be numbers between 0 and 65535")
	}
	return h, w, nil
}

// frameWriter writes Docker's multiplexed frames from several goroutines,
// or the raw stream of a TTY.
type frameWriter struct {
	mu   sync.Mutex
	w    net.Conn
	raw  bool
	gone bool // detached: output is dropped
}

func (f *frameWriter) write(stream byte, p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return 0, net.ErrClosed
	}
	if !f.raw {
		hdr := frameHeader(stream, len(p))
		if _, err := f.w.Write(hdr[:]); err != nil {
			return 0, err
		}
	}
	return f.w.Write(p)
}

// detach drops all further output.
func (f *frameWriter) detach() {
	f.mu.Lock()
	f.gone = true
	f.mu.Unlock()
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
