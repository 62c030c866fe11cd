// Package cli is the moss command line: a client of the agent's Docker
// Engine API with docker's flags, output and exit codes. It owns argument
// parsing, output formatting and starting the agent on demand; it must not
// touch containers or storage itself.
package cli

import (
	"bufio"
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
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/moss-containers/moss/internal/paths"
)

// AgentCommand runs `moss agent`; main sets it, keeping this package free of
// the agent's dependencies.
var AgentCommand func(args []string) int

// Exit codes as docker's.
const (
	exitDaemon = 125
)

// statusError carries an exit code through cobra.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// apiError is an error answer of the agent.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return "Error response from daemon: " + e.msg }

type app struct {
	// agentUp is set once the agent answered, so one command pings once.
	agentUp bool
	host    string
	client  *http.Client
	dirs    paths.Dirs
	out     io.Writer
	errw    io.Writer
	in      io.Reader
}

// Main runs the CLI with args (without the program name) and returns the
// exit code.
func Main(args []string) int {
	a := &app{out: os.Stdout, errw: os.Stderr, in: os.Stdin}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var se *statusError
	if errors.As(err, &se) {
		if se.msg != "" {
			fmt.Fprintln(os.Stderr, se.msg)
		}
		return se.code
	}
	var ae *apiError
	if errors.As(err, &ae) {
		fmt.Fprintln(os.Stderr, ae.Error())
		return 1
	}
	fmt.Fprintf(os.Stderr, "moss: %v\n", err)
	if strings.Contains(err.Error(), "unknown flag") || strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "accepts") || strings.Contains(err.Error(), "requires") {
		fmt.Fprintf(os.Stderr, "See 'moss %s --help'.\n", commandName(root, args))
	}
	return exitDaemon
}

func commandName(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == root {
		return ""
	}
	return strings.TrimPrefix(c.CommandPath(), "moss ")
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "moss",
		Short:         "Moss: rootless containers from one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.setup()
		},
	}
	root.PersistentFlags().StringVarP(&a.host, "host", "H", "", "agent socket (unix:///path); default $MOSS_HOST or the per-user socket")
	root.AddCommand(&cobra.Command{
		Use:                "agent",
		Short:              "Run the agent (API server) in the foreground",
		DisableFlagParsing: true,
		PersistentPreRunE:  func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			if AgentCommand == nil {
				return errors.New("agent not available")
			}
			if code := AgentCommand(args); code != 0 {
				return &statusError{code: code}
			}
			return nil
		},
	})
	a.addContainerCommands(root)
	a.addImageCommands(root)
	a.addSystemCommands(root)
	return root
}

func (a *app) setup() error {
	d, err := paths.Default()
	if err != nil {
		return err
	}
	a.dirs = d
	sock := d.Socket()
	if h := a.host; h != "" {
		sock = strings.TrimPrefix(h, "unix://")
	} else if h := os.Getenv("MOSS_HOST"); h != "" {
		sock = strings.TrimPrefix(h, "unix://")
		a.host = h
	}
	a.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableCompression: true,
	}}
	return nil
}

// ensureAgent starts the agent in the background when its socket does not
// answer and waits until it does.
func (a *app) ensureAgent() error {
	if a.agentUp {
		return nil
	}
	if a.ping() == nil {
		a.agentUp = true
		return nil
	}
	if a.host != "" {
		return &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: cannot reach the agent at %s: is it running?", a.host)}
	}
	if err := a.dirs.Ensure(); err != nil {
		return &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := a.dirs.AgentLog()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(self, "agent")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: the agent did not start: %v: see %s", err, logPath)}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if a.agentUp {
			a.showWarnings()
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for delay := 2 * time.Millisecond; time.Now().Before(deadline); delay = min(delay*2, 100*time.Millisecond) {
		select {
		case err := <-exited:
			if a.ping() == nil {
				a.agentUp = true
				return nil
			}
			return &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: the agent did not start (%v): see %s\n%s", err, logPath, tail(logPath, 10))}
		case <-time.After(delay):
		}
		if a.ping() == nil {
			a.agentUp = true
			return nil
		}
	}
	return &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: the agent did not answer within 60s: see %s\n%s", logPath, tail(logPath, 10))}
}

// showWarnings prints the agent's warnings (a single-ID mapping, say) once,
// when this command started the agent.
func (a *app) showWarnings() {
	var info struct{ Warnings []string }
	if err := a.call(http.MethodGet, "/info", nil, nil, &info); err != nil {
		return
	}
	for _, w := range info.Warnings {
		fmt.Fprintf(a.errw, "WARNING: %s\n", w)
	}
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (a *app) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://moss/_ping", nil)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping: %s", resp.Status)
	}
	return nil
}

const apiPrefix = "/v1.47"

// do sends a request and returns the response; error statuses become
// *apiError.
func (a *app) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	if err := a.ensureAgent(); err != nil {
		return nil, err
	}
	u := "http://moss" + apiPrefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: cannot reach the agent: %v (socket %s; its log: %s)", err, a.dirs.Socket(), a.dirs.AgentLog())}
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

// call sends a JSON request and decodes a JSON answer into out (if non-nil).
func (a *app) call(method, path string, q url.Values, in, out interface{}) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = strings.NewReader(string(b)), "application/json"
	}
	resp, err := a.do(context.Background(), method, path, q, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// jsonMessages prints a Docker JSON message stream and fails on an error
// message.
func jsonMessages(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m struct {
			Stream string `json:"stream"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return &apiError{msg: m.Error}
		}
		if m.Stream != "" {
			fmt.Fprint(w, m.Stream)
		}
		if m.Status != "" {
			fmt.Fprintln(w, m.Status)
		}
	}
}

// eachArg runs fn for every argument like docker's multi-object commands:
// it prints failures and goes on, and fails at the end if any failed.
func (a *app) eachArg(args []string, fn func(string) error) error {
	failed := false
	for _, arg := range args {
		if err := fn(arg); err != nil {
			var se *statusError
			if errors.As(err, &se) {
				return err
			}
			fmt.Fprintln(a.errw, err)
			failed = true
		}
	}
	if failed {
		return &statusError{code: 1}
	}
	return nil
}
