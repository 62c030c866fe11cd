// Package shim is the per-container supervisor. One shim process per
// container, in its own session, creates the container with libcontainer,
// holds its stdio, writes its json-file log, reaps it and records its exit
// status, so that containers outlive the agent. The package also holds the
// agent's client for talking to a shim over its unix socket. It must not
// touch storage or the agent's metadata.
package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/userns"
	_ "github.com/opencontainers/cgroups/devices" // device rules for cgroup v1 and v2
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/exeseal"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moss-containers/moss/agent/jsonlog"
)

// Role is the hidden argument that makes the binary run as a shim.
const Role = "__shim"

// Files in a container's bundle directory.
const (
	SpecFile = "config.json"
	ExitFile = "exit.json"
	PidFile  = "shim.pid"
	LogFile  = "container.log"
	shimLog  = "shim.log"
)

// Stream identifiers of the multiplexed attach stream (Docker's stdcopy).
const (
	StreamStdout = 1
	StreamStderr = 2
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
	Op     string `json:"op"`
	Signal int    `json:"signal,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
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
}

type shim struct {
	opts      Options
	container *libcontainer.Container
	process   *libcontainer.Process
	log       *jsonlog.Writer

	copyWG sync.WaitGroup

	mu       sync.Mutex
	started  bool
	attached []*attachConn
	exit     *ExitStatus
	exited   chan struct{}
}

type attachConn struct {
	c              net.Conn
	stdout, stderr bool
	dead           bool
}

// Main runs the shim role. args are: ID BUNDLE RUNCROOT SOCKET MAXSIZE MAXFILES.
// File descriptor 3 is the ready pipe: the shim writes one JSON response
// (the init's PID, or the error) and closes it.
func Main(args []string) int {
	ready := os.NewFile(3, "ready")
	if len(args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: __shim ID BUNDLE RUNCROOT SOCKET MAXSIZE MAXFILES")
		return 2
	}
	maxSize, _ := strconv.ParseInt(args[4], 10, 64)
	maxFiles, _ := strconv.Atoi(args[5])
	s := &shim{opts: Options{ID: args[0], Bundle: args[1], RuncRoot: args[2], Socket: args[3], LogMaxSize: maxSize, LogMaxFiles: maxFiles}, exited: make(chan struct{})}
	if f, err := os.OpenFile(filepath.Join(s.opts.Bundle, shimLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		os.Stderr = f
		_ = syscall.Dup3(int(f.Fd()), 2, 0)
	}
	l, err := s.create()
	if err != nil {
		writeResponse(ready, response{Error: err.Error()})
		ready.Close()
		return 1
	}
	pid, _ := s.process.Pid()
	_ = os.WriteFile(filepath.Join(s.opts.Bundle, PidFile), []byte(strconv.Itoa(os.Getpid())), 0o600)
	writeResponse(ready, response{Pid: pid})
	ready.Close()
	go s.serve(l)
	s.wait()
	l.Close()
	_ = os.Remove(s.opts.Socket)
	return 0
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

func (s *shim) create() (net.Listener, error) {
	trace(fmt.Sprintf("main (exe sealed: %v)", exeseal.IsSelfExeCloned()))
	data, err := os.ReadFile(filepath.Join(s.opts.Bundle, SpecFile))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if err := os.Chdir(s.opts.Bundle); err != nil {
		return nil, err
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:      s.opts.ID,
		Spec:            &spec,
		RootlessEUID:    os.Geteuid() != 0,
		RootlessCgroups: os.Geteuid() != 0 || userns.RunningInUserNS(),
	})
	if err != nil {
		return nil, fmt.Errorf("container config: %w", err)
	}
	s.log, err = jsonlog.Open(filepath.Join(s.opts.Bundle, LogFile), s.opts.LogMaxSize, s.opts.LogMaxFiles)
	if err != nil {
		return nil, err
	}
	trace("configured")
	c, err := libcontainer.Create(s.opts.RuncRoot, s.opts.ID, cfg)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	s.container = c
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	p := spec.Process
	nnp := p.NoNewPrivileges
	proc := &libcontainer.Process{
		Args: p.Args, Env: p.Env, UID: int(p.User.UID), GID: int(p.User.GID), Cwd: p.Cwd,
		NoNewPrivileges: &nnp, Init: true, Stdin: devnull, Stdout: outW, Stderr: errW,
	}
	for _, g := range p.User.AdditionalGids {
		proc.AdditionalGroups = append(proc.AdditionalGroups, int(g))
	}
	if p.Capabilities != nil {
		proc.Capabilities = &configs.Capabilities{Bounding: p.Capabilities.Bounding, Effective: p.Capabilities.Effective, Permitted: p.Capabilities.Permitted}
	}
	trace("created")
	if err := c.Start(proc); err != nil {
		_ = c.Destroy()
		return nil, err
	}
	trace("started")
	outW.Close()
	errW.Close()
	devnull.Close()
	s.process = proc
	sock := s.opts.Socket
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		_ = c.Signal(syscall.SIGKILL)
		_ = c.Destroy()
		return nil, err
	}
	s.copyWG.Add(2)
	go s.copy(outR, "stdout", StreamStdout)
	go s.copy(errR, "stderr", StreamStderr)
	return l, nil
}

func (s *shim) copy(r *os.File, stream string, id byte) {
	defer s.copyWG.Done()
	defer r.Close()
	buf := make([]byte, 32*1024)
	frame := make([]byte, 8, 8+len(buf))
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now()
			if werr := s.log.Write(stream, buf[:n], now); werr != nil {
				fmt.Fprintf(os.Stderr, "write log: %v\n", werr)
			}
			frame = frame[:8]
			frame[0] = id
			frame[4], frame[5], frame[6], frame[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			frame = append(frame, buf[:n]...)
			s.mu.Lock()
			for _, a := range s.attached {
				if a.dead || (id == StreamStdout && !a.stdout) || (id == StreamStderr && !a.stderr) {
					continue
				}
				_ = a.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := a.c.Write(frame); err != nil {
					a.dead = true
					a.c.Close()
				}
			}
			s.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (s *shim) wait() {
	ps, err := s.process.Wait()
	st := &ExitStatus{FinishedAt: time.Now().UTC()}
	if ps == nil {
		st.Code, st.Error = 255, fmt.Sprint(err)
	} else if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Signal = int(ws.Signal())
		st.Code = 128 + st.Signal
	} else {
		st.Code = ps.ExitCode()
	}
	// The init is gone; other processes of the container are killed with
	// it by the kernel (PID namespace). Drain their output, then record.
	s.copyWG.Wait()
	if st.Signal == int(syscall.SIGKILL) {
		st.OOMKilled = oomKilled(s.container)
	}
	_ = s.container.Destroy()
	_ = s.log.Close()
	b, _ := json.Marshal(st)
	_ = writeFileAtomic(filepath.Join(s.opts.Bundle, ExitFile), b)
	s.mu.Lock()
	s.exit = st
	for _, a := range s.attached {
		a.c.Close()
	}
	s.attached = nil
	s.mu.Unlock()
	close(s.exited)
	// Give connected waiters a moment to read the status; the exit file
	// holds it for anybody who comes later.
	time.Sleep(20 * time.Millisecond)
}

func oomKilled(c *libcontainer.Container) bool {
	st, err := c.Stats()
	if err != nil || st.CgroupStats == nil {
		return false
	}
	return st.CgroupStats.MemoryStats.Stats["oom_kill"] > 0
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *shim) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *shim) handle(c net.Conn) {
	var req request
	if err := json.NewDecoder(io.LimitReader(c, 4096)).Decode(&req); err != nil {
		c.Close()
		return
	}
	switch req.Op {
	case "start":
		s.mu.Lock()
		var err error
		if !s.started {
			err = s.container.Exec()
			s.started = err == nil
		}
		s.mu.Unlock()
		pid, _ := s.process.Pid()
		r := response{Pid: pid}
		if err != nil {
			r = response{Error: err.Error()}
		}
		writeResponse(c, r)
		c.Close()
	case "attach":
		s.mu.Lock()
		if s.exit != nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		// The connection now only carries output; the reply line tells
		// the client that it is registered.
		writeResponse(c, response{})
		s.attached = append(s.attached, &attachConn{c: c, stdout: req.Stdout, stderr: req.Stderr})
		s.mu.Unlock()
	case "wait":
		<-s.exited
		s.mu.Lock()
		st := s.exit
		s.mu.Unlock()
		writeResponse(c, response{Exit: st})
		c.Close()
	case "kill":
		err := s.container.Signal(syscall.Signal(req.Signal))
		r := response{}
		if err != nil && !errors.Is(err, os.ErrProcessDone) {
			r.Error = err.Error()
		}
		writeResponse(c, r)
		c.Close()
	default:
		writeResponse(c, response{Error: "unknown op " + req.Op})
		c.Close()
	}
}
