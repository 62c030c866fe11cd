package shim

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/moss-containers/moss/internal/spare"
)

// ErrGone is returned when the shim of a container is no longer running.
var ErrGone = errors.New("container supervisor is not running")

// Launcher starts shims. It keeps one shim started in advance, waiting for
// its container's options: executing the binary and initialising the Go
// runtime took 8–12 ms of every container start.
type Launcher struct {
	exe  string
	warm *spare.Spare[*warmShim]
}

type warmShim struct {
	ctl   *os.File // write end: the options, as one JSON line
	ready *os.File // read end: the shim's one-line answer
}

// NewLauncher returns a Launcher for shims run from exe and starts the
// first spare shim.
func NewLauncher(exe string) *Launcher {
	l := &Launcher{exe: exe}
	l.warm = spare.New(l.prepare, (*warmShim).close)
	l.warm.Refill()
	return l
}

func (l *Launcher) prepare() (*warmShim, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		readyW.Close()
		return nil, err
	}
	cmd := exec.Command(l.exe, Role, warmArg)
	cmd.Args[0] = "moss"
	cmd.ExtraFiles = []*os.File{readyW, ctlR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	cmd.Env = shimEnv()
	err = cmd.Start()
	readyW.Close()
	ctlR.Close()
	if err != nil {
		readyR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	// Reap the shim if it exits while this agent still runs; otherwise it
	// is re-parented and reaped by the system.
	go func() { _ = cmd.Wait() }()
	return &warmShim{ctl: ctlW, ready: readyR}, nil
}

// Refill starts a spare shim in the background unless one is waiting. The
// agent calls it once a container is running, so that the spare does not
// compete for the CPU with the start itself.
func (l *Launcher) Refill() { l.warm.Refill() }

func (w *warmShim) close() {
	w.ctl.Close() // the shim exits when its options pipe closes
	w.ready.Close()
}

// Close lets the spare shim exit.
func (l *Launcher) Close() { l.warm.Close() }

// Spawn hands o to a shim and waits until the container is created (its
// init waits to be started). It returns the init's PID.
func (l *Launcher) Spawn(o Options) (int, error) {
	w, ok := l.warm.Take()
	if !ok {
		var err error
		if w, err = l.prepare(); err != nil {
			return 0, err
		}
	}
	defer w.ready.Close()
	b, _ := json.Marshal(o)
	_, err := w.ctl.Write(append(b, '\n'))
	w.ctl.Close()
	if err != nil {
		return 0, fmt.Errorf("container supervisor: %w", err)
	}
	line, err := bufio.NewReader(w.ready).ReadBytes('\n')
	if err != nil {
		data, _ := os.ReadFile(filepath.Join(o.Bundle, shimLog))
		return 0, fmt.Errorf("container supervisor failed: %s", data)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return 0, err
	}
	if resp.Error != "" {
		return 0, errors.New(resp.Error)
	}
	return resp.Pid, nil
}

func shimEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "XDG_RUNTIME_DIR", "MOSS_RUNTIME_DIR", "MOSS_DATA_DIR", "MOSS_SHIM_TRACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func call(socket string, req request, timeout time.Duration) (net.Conn, *response, error) {
	return callWith(socket, req, nil, timeout)
}

// callWith is call with payload sent right after the request.
func callWith(socket string, req request, payload []byte, timeout time.Duration) (net.Conn, *response, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, payload...)); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	if timeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
	}
	br := bufio.NewReader(c)
	line, err := br.ReadBytes('\n')
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		c.Close()
		return nil, nil, err
	}
	if resp.Error != "" {
		c.Close()
		return nil, nil, errors.New(resp.Error)
	}
	return &bufferedConn{Conn: c, r: br}, &resp, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// stubMessage is the command for a warm container's stub
// (internal/warmstub): the length of what follows the header, the number of
// arguments and of environment entries (32-bit, little-endian), then each,
// NUL-terminated.
func stubMessage(args, env []string) []byte {
	var data []byte
	for _, a := range append(append([]string{}, args...), env...) {
		data = append(append(data, a...), 0)
	}
	msg := make([]byte, 12, 12+len(data))
	binary.LittleEndian.PutUint32(msg[0:], uint32(len(data)))
	binary.LittleEndian.PutUint32(msg[4:], uint32(len(args)))
	binary.LittleEndian.PutUint32(msg[8:], uint32(len(env)))
	return append(msg, data...)
}

// Start lets the created container's init run its command.
func Start(socket string) (int, error) { return StartCommand(socket, nil, nil) }

// StartCommand starts a warm container (Options.Warm) with its command:
// args, in the environment env.
func StartCommand(socket string, args, env []string) (int, error) {
	req, payload := request{Op: "start"}, []byte(nil)
	if args != nil {
		payload = stubMessage(args, env)
		req.Len = len(payload)
	}
	c, resp, err := callWith(socket, req, payload, 30*time.Second)
	if err != nil {
		return 0, err
	}
	c.Close()
	return resp.Pid, nil
}

// Resize sets the size of the container's terminal.
func Resize(socket string, height, width int) error {
	c, _, err := call(socket, request{Op: "resize", Height: height, Width: width}, 10*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Kill sends sig to the container's init.
func Kill(socket string, sig syscall.Signal) error {
	c, _, err := call(socket, request{Op: "kill", Signal: int(sig)}, 10*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Attach returns a connection carrying the container's output from now on,
// multiplexed with Docker's 8-byte frame headers, until the container exits.
// With stdin, what is written to it goes to the container's stdin (of a
// container created with Options.Stdin); CloseWrite ends that input.
func Attach(socket string, stdin, stdout, stderr bool) (*AttachConn, error) {
	c, _, err := call(socket, request{Op: "attach", Stdin: stdin, Stdout: stdout, Stderr: stderr}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &AttachConn{bufferedConn: c.(*bufferedConn)}, nil
}

// AttachConn is an attached client's connection to a supervisor.
type AttachConn struct{ *bufferedConn }

// CloseWrite ends the input sent to the container's stdin.
func (a *AttachConn) CloseWrite() error {
	if cw, ok := a.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Wait blocks until the container exits and returns its status. When the
// shim is already gone the status comes from the bundle's exit file.
func Wait(socket, bundle string) (*ExitStatus, error) {
	c, resp, err := call(socket, request{Op: "wait"}, 0)
	if err == nil {
		c.Close()
		if resp.Exit != nil {
			return resp.Exit, nil
		}
	}
	return ReadExit(bundle)
}

// ReadExit reads the recorded exit status of a container.
func ReadExit(bundle string) (*ExitStatus, error) {
	data, err := os.ReadFile(filepath.Join(bundle, ExitFile))
	if err != nil {
		return nil, err
	}
	var st ExitStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Alive reports whether the shim recorded in bundle is still running.
func Alive(bundle string) bool {
	data, err := os.ReadFile(filepath.Join(bundle, PidFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		return false
	}
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	_, err = ReadExit(bundle)
	return err != nil
}
