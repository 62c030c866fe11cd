package shim

import (
	"bufio"
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
)

// ErrGone is returned when the shim of a container is no longer running.
var ErrGone = errors.New("container supervisor is not running")

// Spawn starts a shim from exe and waits until the container is created (its
// init waits to be started). It returns the init's PID.
func Spawn(exe string, o Options) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := exec.Command(exe, Role, o.ID, o.Bundle, o.RuncRoot, o.Socket,
		strconv.FormatInt(o.LogMaxSize, 10), strconv.Itoa(o.LogMaxFiles))
	cmd.Args[0] = "moss"
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = o.Bundle
	cmd.Env = shimEnv()
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, fmt.Errorf("start supervisor: %w", err)
	}
	w.Close()
	// Reap the shim if it exits while this agent still runs; otherwise it
	// is re-parented and reaped by the system.
	go func() { _ = cmd.Wait() }()
	line, err := bufio.NewReader(r).ReadBytes('\n')
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
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(b); err != nil {
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

// Start lets the created container's init run its command.
func Start(socket string) (int, error) {
	c, resp, err := call(socket, request{Op: "start"}, 30*time.Second)
	if err != nil {
		return 0, err
	}
	c.Close()
	return resp.Pid, nil
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
func Attach(socket string, stdout, stderr bool) (net.Conn, error) {
	c, _, err := call(socket, request{Op: "attach", Stdout: stdout, Stderr: stderr}, 10*time.Second)
	return c, err
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
