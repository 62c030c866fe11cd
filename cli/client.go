package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moss-containers/moss/internal/logfile"
	"github.com/moss-containers/moss/internal/paths"
)

// apiVersion is the Docker Engine API version the client speaks.
const apiVersion = "1.43"

// agentStartTimeout bounds the wait for an auto-started agent.
const agentStartTimeout = 30 * time.Second

// apiError is an error answer of the agent; it prints as docker prints
// daemon errors, which scripts grep for.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return "Error response from daemon: " + e.msg }

// client talks HTTP to the agent over its unix socket and starts the agent
// when nobody listens there.
type client struct {
	sock string
	// autoStart is set when sock is the per-user default socket: only then
	// does a started agent listen where the client dials.
	autoStart bool
	dirs      paths.Dirs
	hc        *http.Client
	up        bool // the agent answered once: one check per command
	// probe is the connection of that check, for the first request.
	mu    sync.Mutex
	probe net.Conn
	errw  io.Writer
	// agentArgs start the agent (tests replace the executable).
	agentArgs func() ([]string, error)
}

// client returns the agent client, resolving the socket on first use:
// --host, then $MOSS_HOST, then the per-user socket.
func (a *app) client() (*client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	d, err := paths.Default()
	if err != nil {
		return nil, &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	host := a.host
	if host == "" {
		host = os.Getenv("MOSS_HOST")
	}
	sock := d.Socket()
	if host != "" {
		p, ok := strings.CutPrefix(host, "unix://")
		if !ok && strings.Contains(host, "://") {
			return nil, &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: unsupported host %q: want unix:///path/to/socket", host)}
		}
		sock = p
	}
	a.cl = newClient(sock, d, a.errw)
	return a.cl, nil
}

func newClient(sock string, d paths.Dirs, errw io.Writer) *client {
	c := &client{sock: sock, dirs: d, autoStart: sock == d.Socket(), errw: errw}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.dial(ctx)
		},
		DisableCompression: true,
		MaxIdleConns:       4,
	}}
	c.agentArgs = func() ([]string, error) {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return []string{self, "agent"}, nil
	}
	return c
}

func (c *client) dial(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	conn := c.probe
	c.probe = nil
	c.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", c.sock)
}

// notListening tells whether a dial error means no agent is there (the
// socket is missing or stale), as opposed to an agent that misbehaves.
func notListening(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

func (c *client) unreachable(err error) error {
	msg := fmt.Sprintf("moss: cannot reach the agent at unix://%s: %v", c.sock, unwrapURLError(err))
	if c.autoStart {
		msg += fmt.Sprintf("\nIs the agent running? Its log: %s", c.dirs.AgentLog())
	} else {
		msg += "\nIs the agent running there? Start it with 'moss agent', or unset MOSS_HOST/--host to use the per-user agent."
	}
	return &statusError{code: exitDaemon, msg: msg}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// ensure makes sure the agent answers, starting it when its socket is
// missing or stale.
func (c *client) ensure() error {
	if c.up {
		return nil
	}
	// A connection answers whether the agent is there; it then carries
	// the first request (a ping would cost a round trip of its own).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	conn, err := c.dial(ctx)
	cancel()
	if err == nil {
		c.mu.Lock()
		c.probe, c.up = conn, true
		c.mu.Unlock()
		return nil
	}
	if !notListening(err) || !c.autoStart {
		return c.unreachable(err)
	}
	if err := c.startAgent(); err != nil {
		return err
	}
	c.up = true
	c.showWarnings()
	return nil
}

// startAgent starts `moss agent` in the background, in its own session with
// its output appended to the agent log, and waits until it answers.
func (c *client) startAgent() error {
	logPath := c.dirs.AgentLog()
	failed := func(detail string) error {
		msg := "moss: the agent did not start: see " + logPath
		if detail != "" {
			msg += "\n" + detail
		}
		if t := logfile.Tail(logPath, 10); t != "" {
			msg += "\n" + t
		}
		return &statusError{code: exitDaemon, msg: msg}
	}
	if err := c.dirs.Ensure(); err != nil {
		return &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	argv, err := c.agentArgs()
	if err != nil {
		return failed(err.Error())
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: open the agent log: %v", err)}
	}
	defer lf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return failed(err.Error())
	}
	pid := cmd.Process.Pid
	// exited reaps the agent if it has already ended; a running agent is
	// released below and outlives this command.
	exited := func() bool {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		return p == pid || (err != nil && !errors.Is(err, syscall.EINTR))
	}
	deadline := time.Now().Add(agentStartTimeout)
	for i := 0; ; i++ {
		if c.ping() == nil {
			_ = cmd.Process.Release()
			return nil
		}
		if exited() {
			// Another command may have started an agent meanwhile: ours
			// found it holding the lock. Wait for that one to answer.
			for c.agentLocked() && time.Now().Before(deadline) {
				if c.ping() == nil {
					return nil
				}
				time.Sleep(20 * time.Millisecond)
			}
			if c.ping() == nil {
				return nil
			}
			return failed("")
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Release()
			return failed(fmt.Sprintf("(no answer within %v)", agentStartTimeout))
		}
		delay := 5 * time.Millisecond
		if i >= 40 {
			delay = 20 * time.Millisecond
		}
		time.Sleep(delay)
	}
}

// agentLocked tells whether an agent holds the agent lock (it runs, or is
// starting).
func (c *client) agentLocked() bool {
	f, err := os.Open(c.dirs.AgentLock())
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// showWarnings prints the agent's warnings (a single-ID mapping, say) once,
// when this command started the agent.
func (c *client) showWarnings() {
	var info struct{ Warnings []string }
	if err := c.call(http.MethodGet, "/info", nil, nil, &info); err != nil {
		return
	}
	for _, w := range info.Warnings {
		fmt.Fprintf(c.errw, "WARNING: %s\n", w)
	}
}

func (c *client) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://d/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping: %s", resp.Status)
	}
	return nil
}

func apiURL(path string, q url.Values) string {
	u := "http://d/v" + apiVersion + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do sends a request and returns the response; error statuses become
// *apiError, an unreachable agent a *statusError.
func (c *client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	if err := c.ensure(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, apiURL(path, q), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

func readAPIError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &m) != nil || m.Message == "" {
		m.Message = strings.TrimSpace(string(data))
		if m.Message == "" {
			m.Message = resp.Status
		}
	}
	return &apiError{status: resp.StatusCode, msg: m.Message}
}

// call sends in (if non-nil) as JSON and decodes a JSON answer into out (if
// non-nil).
func (c *client) call(method, path string, q url.Values, in, out interface{}) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(context.Background(), method, path, q, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// hijack opens an upgraded connection (attach): it sends Connection: Upgrade
// and Upgrade: tcp and expects 101 (or 200 from older servers). The reader
// returned holds bytes the server sent after its headers.
func (c *client) hijack(path string, q url.Values, in interface{}) (net.Conn, *bufio.Reader, error) {
	if err := c.ensure(); err != nil {
		return nil, nil, err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, nil, err
		}
		body = bytes.NewReader(b)
	}
	conn, err := c.dial(context.Background())
	if err != nil {
		return nil, nil, c.unreachable(err)
	}
	req, err := http.NewRequest(http.MethodPost, apiURL(path, q), body)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, c.unreachable(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, c.unreachable(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return nil, nil, readAPIError(resp)
	}
	return conn, br, nil
}

// jsonMessages prints a Docker JSON message stream (load, import) and fails
// on an error message.
func jsonMessages(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m struct {
			Stream      string `json:"stream"`
			Status      string `json:"status"`
			ID          string `json:"id"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the agent's answer: %w", err)
		}
		// Like docker, a stream's error prints as it is, not as a daemon
		// error answer.
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return &statusError{code: exitFailure, msg: "moss: " + m.ErrorDetail.Message}
		}
		if m.Error != "" {
			return &statusError{code: exitFailure, msg: "moss: " + m.Error}
		}
		if m.Stream != "" {
			fmt.Fprint(w, m.Stream)
		}
		if m.Status != "" {
			if m.ID != "" {
				fmt.Fprintf(w, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(w, m.Status)
			}
		}
	}
}
